"""Motion learning curves: train named DiT recipes for the same budget of CPU minutes on the same data, and
print WorldBench colour, shape, direction and left/right confusion at fixed points, side by side.

Direction accuracy against training minutes is the figure that decides designs (issue 15). Each recipe is a
`tenku train dit` run with a time budget (`max_train_minutes`) and the in-training WorldBench pass
(`worldbench_every`), on latents of one fixed data set cached once with the given VAE; the x axis is
`train_seconds` (time in training steps alone, evaluation excluded). Runs resume: rerunning the same command
continues each curve from its last checkpoint, up to a larger --minutes.

    nice .venv/bin/python bench/motion_curve.py --recipes recipes/world-xs-dit.yaml recipes/world-xs-dit-i2v.yaml \
        --mix uniform --minutes 60 --eval-every 500 --out runs/curve

Starting points: `--init DIR` starts every recipe from a model directory (its init_from) and `--vae DIR` caches
the latents with that directory's VAE (its own cache folder); `--tag` keeps such runs apart from the others, e.g.
the local-time VAE of issue 15 with the shipped DiT's blocks:

    bench/motion_curve.py --recipes recipes/world-xs-dit-i2v-ft-shift.yaml --vae runs/vaelocal/world-xs-local \
        --init runs/vaelocal/world-xs-local --tag localvae --minutes 45 --eval-every 300 --eval-count 32

An anneal (`recipes/world-xs-dit-i2v-ft-shift-anneal.yaml`: cosine decay, slower EMA) forks a constant-LR
run: copy its folder to the anneal recipe's run folder, then run the anneal recipe with `--steps` at the step
the decay should end (the schedule is a function of the step, so it starts part-way down the cosine).

`--animate` adds WorldBench's animate track to every pass (each scene's true first frame given): direction there
is the motion alone, apart from whether the text-to-image stage drew the object at all.

Data: `--clips` training clips of the scene mix `--mix` (tenku.world.sample.MIXES; `uniform`: one object in
uniform motion on a plain background), 64x64, a quarter single frames and the rest 17 frames, seed 0; WorldBench clips from the `id` split of the
same mix. Chance levels for each metric are WorldBench's own chance rows (see its report).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VAE = ROOT / "tenku" / "assets" / "world-xs"
SHOWN = ["color_accuracy", "shape_accuracy", "direction_accuracy", "left_right_confusion", "no_object"]
SHOWN_FIRST = ["direction_accuracy", "speed_accuracy", "no_object"]  # --animate: the true first frame given


def tenku(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "tenku", *args], cwd=ROOT, check=True)


def cached_latents(out: Path, mix: str, clips: int, vae: str, text_layers: list[int] | None = None) -> Path:
    """Make the data set and its latent cache once; later runs reuse them. `text_layers`: the cache holds those
    hidden states of the text encoder (the recipes must say the same in model_overrides text_layers)."""
    # A quarter of the clips are single frames: the two-stage recipe's first stage is an image model.
    data, cache = out / f"data-{mix}-{clips}-f1", out / f"cache-{mix}-{clips}-f1"
    if Path(vae).resolve() != DEFAULT_VAE.resolve():  # latents of another VAE go in their own cache
        cache = cache.with_name(f"{cache.name}-{Path(vae).name}")
    if text_layers:
        cache = cache.with_name(f"{cache.name}-tl{''.join(map(str, text_layers))}")
    if not (data / "manifest.jsonl").is_file():
        tenku("world", "make", "--out", str(data), "--count", str(clips), "--split", "train", "--seed", "0",
              "--mix", mix, "--height", "64", "--width", "64", "--frames-choices", "1", "17", "17", "17", "-q")
    tenku("cache", "--model", vae, "--manifest", str(data / "manifest.jsonl"), "--out", str(cache),
          "--buckets", "64x64", "--frames", "1", "17", "-q",  # images train the two-stage first frame
          *(["--text-layers", *map(str, text_layers)] if text_layers else []))
    return cache


def train(recipe: str, run: Path, cache: Path, args) -> None:
    sets = [f"max_train_minutes={args.minutes}", f"worldbench_every={args.eval_every}", f"worldbench_mix={args.mix}",
            f"worldbench_count={args.eval_count}", f"worldbench_steps={args.eval_steps}", "checkpoint_every=100",
            f"steps={args.steps}", "progress=false", f"worldbench_animate={str(args.animate).lower()}"]
    sets += [f"init_from={args.init}"] if args.init else []
    cmd = ["train", "dit", "--config", recipe, "--data", str(cache), "--vae", args.vae, "--out", str(run)]
    cmd += [x for s in sets for x in ("--set", s)]
    if (run / "config.json").is_file():
        cmd.append("--resume")
    tenku(*cmd)


def curve(run: Path) -> list[dict]:
    """The WorldBench rows of a run's metrics.jsonl, each with the mean loss logged since the row before."""
    rows, losses = [], []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line of a killed run
        if "loss" in d:
            losses.append(d["loss"])
        if any(k.startswith("wb/") for k in d):
            rows.append({**d, "loss": sum(losses) / len(losses) if losses else float("nan")})
            losses = []
    return rows


def table(curves: dict[str, list[dict]]) -> str:
    shown = [f"wb/{k}" for k in SHOWN]
    if any(k.startswith("wb_first/") for rows in curves.values() for r in rows for k in r):
        shown += [f"wb_first/{k}" for k in SHOWN_FIRST]
    names = [k.split("/")[1].replace("_", " ") + (" (first given)" if k.startswith("wb_first") else "") for k in shown]
    lines = ["| recipe | step | train min | loss | " + " | ".join(names) + " |", "|" + "---|" * (4 + len(shown))]
    for name, rows in curves.items():
        for r in rows:
            cells = [f"{r[k]:.3f}" if k in r else "-" for k in shown]
            lines.append(f"| {name} | {r['step']} | {r['train_seconds'] / 60:.1f} | {r['loss']:.4f} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="+", required=True, help="DiT recipes (YAML of TrainConfig fields)")
    p.add_argument("--mix", default="uniform", help="scene mix of the data and of the WorldBench clips")
    p.add_argument("--clips", type=int, default=2000, help="training clips")
    p.add_argument("--vae", default=str(DEFAULT_VAE), help="model directory of the VAE the latents are cached with")
    p.add_argument("--init", help="model directory every recipe starts from (its init_from; e.g. the --vae folder)")
    p.add_argument("--tag", help="suffix of the run folders, to keep curves of one recipe under other settings apart")
    p.add_argument("--minutes", type=float, default=60, help="training minutes per recipe")
    p.add_argument("--steps", type=int, default=1_000_000, help="the runs' `steps` (a time-budget run never reaches"
                   " the default; a cosine recipe decays over it, so give the step its decay should end at)")
    p.add_argument("--eval-every", type=int, default=500, help="steps between WorldBench passes")
    p.add_argument("--eval-count", type=int, default=16, help="WorldBench clips per pass")
    p.add_argument("--eval-steps", type=int, default=10, help="sampler steps per WorldBench clip")
    p.add_argument("--animate", action="store_true", help="each pass also animates the scenes' true first frames"
                   " (worldbench_animate): direction with the layout given, i.e. the motion alone")
    p.add_argument("--text-layers", type=int, nargs="+", help="cache these text-encoder hidden states (for recipes"
                   " whose model_overrides set the same text_layers)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "curve")
    p.add_argument("--cache-only", action="store_true", help="make the data and latent cache, train nothing (then"
                   " run one process per recipe, e.g. OMP_NUM_THREADS=1 each, to train them side by side)")
    p.add_argument("--report-only", action="store_true", help="print the table of existing runs, train nothing")
    args = p.parse_args(argv)
    suffix = f"-{args.tag}" if args.tag else ""
    runs = {Path(r).stem + suffix: args.out / f"{Path(r).stem}-{args.mix}{suffix}" for r in args.recipes}
    if not args.report_only:
        cache = cached_latents(args.out, args.mix, args.clips, args.vae, args.text_layers)
        if args.cache_only:
            return
        for recipe, run in zip(args.recipes, runs.values()):
            train(recipe, run, cache, args)
    print(f"WorldBench ({args.mix} mix, id split, {args.eval_count} clips, {args.eval_steps} steps) against "
          f"training minutes, {args.clips} training clips:\n")
    print(table({name: curve(run) for name, run in runs.items() if (run / "metrics.jsonl").is_file()}))


if __name__ == "__main__":
    main()
