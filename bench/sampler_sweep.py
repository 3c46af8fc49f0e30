"""Sampler settings of a two-stage model, scored by WorldBench on the same scenes and noise: the pipeline is loaded
once and each setting generates every seed's 64 clips (what `tenku worldbench run --split id --mix simple --count 64
--seed S` does, through `tenku.worldbench.cli.run_benchmark`), so settings differ only in the setting.

    OMP_NUM_THREADS=2 .venv/bin/python bench/sampler_sweep.py --seeds 100 101 102 --out runs/sweep \\
        base: motion3:g2=3 held10:gt=0.1

A setting is NAME:KEY=VALUE,...; keys (missing ones keep the model's config.json):
    g1  guidance of the image stage (SampleConfig.image_guidance)
    g2  guidance of the animation stage (SampleConfig.guidance, what --guidance sets)
    gt  the noise level t at which the given first frame is held (flow.given_t: FlowConfig.given_noise / 2)
    s1  sampler steps of the image stage
    s2  sampler steps of the animation stage
Prints one JSON row per setting and seed (also appended to OUT/rows.jsonl) and a table of the means.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KEYS = {"g1": float, "g2": float, "gt": float, "s1": int, "s2": int}
METRICS = ("color_accuracy", "shape_accuracy", "direction_accuracy", "left_right_confusion", "no_object")


def parse_setting(text: str) -> tuple[str, dict]:
    """'name:g2=3,gt=0.1' -> ('name', {'g2': 3.0, 'gt': 0.1}); unknown keys are refused."""
    name, _, spec = text.partition(":")
    if not name:
        raise ValueError(f"setting {text!r} has no name (NAME:KEY=VALUE,...)")
    out = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key not in KEYS:
            raise ValueError(f"setting {name!r}: unknown key {key!r}; choose from {sorted(KEYS)}")
        out[key] = KEYS[key](value)
    return name, out


def apply(pipe, setting: dict, defaults: dict) -> dict:
    """Set the pipeline's config for one setting; returns run_benchmark's steps and guidance."""
    sample, flow = pipe.cfg.sample, pipe.cfg.flow
    sample.image_guidance = setting.get("g1", defaults["g1"])
    flow.given_noise = 2 * setting.get("gt", defaults["gt"])
    s1 = setting.get("s1")
    first = type(pipe)._first_frame.__get__(pipe)  # the class's method, not a wrapper of an earlier setting
    pipe._first_frame = first if s1 is None else (
        lambda noise, text, mask, steps, guidance, sampler: first(noise, text, mask, s1, guidance, sampler))
    return {"steps": setting.get("s2", defaults["s2"]), "guidance": setting.get("g2", defaults["g2"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("settings", nargs="+", help="NAME:KEY=VALUE,... (see the module docstring)")
    ap.add_argument("--model", help="model directory (default: the shipped model)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102])
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--split", default="id")
    ap.add_argument("--mix", default="simple")
    ap.add_argument("--out", type=Path, default=Path("runs/sampler_sweep"))
    args = ap.parse_args()
    settings = [parse_setting(s) for s in args.settings]

    import tenku
    from tenku.worldbench.cli import run_benchmark

    pipe = tenku.load_pipeline(args.model, "cpu")
    s = pipe.cfg.sample
    defaults = {"g1": s.image_guidance, "g2": s.guidance, "gt": pipe.cfg.flow.given_noise / 2, "s2": s.steps}
    args.out.mkdir(parents=True, exist_ok=True)
    means = {}
    for name, setting in settings:
        run = apply(pipe, setting, defaults)
        for seed in args.seeds:
            report = run_benchmark(pipe, args.out / f"{name}-s{seed}", args.split, args.count, seed, quiet=True,
                                   mix=args.mix, **run)
            row = {"setting": name, "seed": seed, **{k: report["summary"][k]["mean"] for k in METRICS}}
            print(json.dumps(row), flush=True)
            with open(args.out / "rows.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            means.setdefault(name, []).append(row)
    print(f"\n| setting | seeds | {' | '.join(METRICS)} |\n|---|---|{'---|' * len(METRICS)}")
    for name, rows in means.items():
        cells = " | ".join(f"{sum(r[k] for r in rows) / len(rows):.3f}" for k in METRICS)
        print(f"| {name} | {len(rows)} | {cells} |")


if __name__ == "__main__":
    main()
