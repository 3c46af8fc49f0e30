r"""LoRA personalisation on Tenku World: teach the default model a colour/shape pair it has never seen.

Tenku World holds some (colour, shape, motion) triples out of training (palette.COMBO_HOLDOUT); the `combo`
split is made of them. This fine-tunes low-rank adapters (`tenku train dit --set lora_rank=R`, base frozen) on
`--clips` clips of one held-out pair from the combo split of a scene mix (`--mix`: `simple`, the default model's,
holds a blue square that falls, which it renders badly; `uniform` a red triangle and a white ball in uniform
motion), and scores WorldBench on other clips of the same pair (another seed) before and after, with the same
sampling seeds. A two-stage model draws
frame 0 as an image first, so the adapter also trains on each clip's first frame alone (the image stage), and
on `--replay` clips of the `simple` world it was trained on (half single frames), so that it learns the pair
without forgetting how to draw and move anything else:

    nice .venv/bin/python bench/lora_personalise.py --color blue --shape square --mix simple --clips 8 \
        --subject-word zorp --steps 1000 --lr 1e-3

`--subject-word zorp` is DreamBooth's setting: every caption of the pair (training and evaluation) names the object
by a made-up word instead of its colour and shape ("A small zorp falls to the left ..."), so before the adapter
the model cannot know what to draw (colour and shape near chance), and after it, it must draw the subject it
was shown and still move it the way each prompt says. Scoring reads the scenes, not the captions, so the same
WorldBench numbers apply.

Prints one table: colour, shape, direction and no-object rate before / after, beside WorldBench's chance rows
(report.json of each side), the adapter's size in MB and the training minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenku.data.clips import read_records  # noqa: E402
from tenku.vocab import COLOR_WORDS, SHAPE_WORDS, SIZE_WORDS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHOWN = ["color_accuracy", "shape_accuracy", "direction_accuracy", "no_object"]


def tenku(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "tenku", *args], cwd=ROOT, check=True)


def write_manifest(path: Path, records: list[dict]) -> Path:
    """Records read by tenku.data.clips.read_records back to a .jsonl manifest (without its `_line` numbers)."""
    path.write_text("".join(json.dumps({k: v for k, v in d.items() if k != "_line"}) + "\n" for d in records))
    return path


def is_pair(record: dict, color: str, shape: str) -> bool:
    """A manifest record whose scene holds one object, of this colour and shape."""
    return [(o["color"], o["shape"]) for o in record["scene"]["objects"]] == [(color, shape)]


def subject_caption(caption: str, color: str, shape: str, word: str) -> str:
    """The caption with its "<colour> <shape>" noun (any wording, train or held-out) replaced by `word`."""
    alt = lambda words: "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))  # noqa: E731
    sizes = alt(w for both in SIZE_WORDS.values() for ws in both for w in ws)
    pattern = (rf"\b(an?) ((?:{sizes}) )?(?:{alt(sum(COLOR_WORDS[color], []))}) "
               rf"(?:{alt(sum(SHAPE_WORDS[shape], []))})\b")
    new, n = re.subn(pattern, lambda m: ("an " if (m[2] or word)[0] in "aeiou" else "a ") + (m[2] or "") + word,
                     caption, count=1, flags=re.IGNORECASE)
    if n != 1:
        raise ValueError(f"no '{color} {shape}' noun phrase in caption {caption!r}")
    return new[0].upper() + new[1:]


def with_subject_word(manifest: Path, color: str, shape: str, word: str | None) -> Path:
    """`manifest` as is, or a copy beside it whose pair captions name the object by `word`."""
    if not word:
        return manifest
    lines = read_records(manifest)
    for d in lines:
        if is_pair(d, color, shape):
            d["caption"] = subject_caption(d["caption"], color, shape, word)
    return write_manifest(manifest.with_name(f"{manifest.stem}-{word}.jsonl"), lines)


def pair_clips(out: Path, seed: int, color: str, shape: str, want: int, mix: str, frames: int = 17) -> Path:
    """A manifest of `want` single-object clips of (color, shape) drawn from the combo split of `mix`. The
    same seed with frames=1 gives the same scenes' first frames (layouts do not depend on the clip length)."""
    name = f"world-{seed}" if mix == "uniform" else f"world-{mix}-{seed}"  # uniform: the folders of earlier runs
    world = out / name if frames == 17 else out / f"{name}-f{frames}"
    if not (world / "manifest.jsonl").is_file():
        tenku("world", "make", "--out", str(world), "--count", str(want * 12), "--split", "combo", "--mix", mix,
              "--seed", str(seed), "--height", "64", "--width", "64", "--frames", str(frames), "-q")
    lines = read_records(world / "manifest.jsonl")
    keep = [d for d in lines if is_pair(d, color, shape)]
    if len(keep) < want:
        raise SystemExit(f"only {len(keep)} clips of a {color} {shape} in {world}; is it a held-out pair?")
    path = world / f"manifest-{color}-{shape}.jsonl"
    return write_manifest(path, keep[:want])


def training_manifest(out: Path, color: str, shape: str, clips: int, replay: int, mix: str) -> Path:
    """The pair's clips, their first frames alone, and `replay` clips of the simple world (half single frames),
    in one manifest with absolute video paths."""
    parts = [pair_clips(out, 0, color, shape, clips, mix), pair_clips(out, 0, color, shape, clips, mix, frames=1)]
    if replay:
        world = out / f"replay-{replay}"
        if not (world / "manifest.jsonl").is_file():
            tenku("world", "make", "--out", str(world), "--count", str(replay), "--split", "train", "--mix", "simple",
                  "--seed", "7", "--height", "64", "--width", "64", "--frames-choices", "1", "17", "-q")
        parts.append(world / "manifest.jsonl")
    lines = [{**d, "video": str((m.parent / d["video"]).resolve())} for m in parts for d in read_records(m)]
    return write_manifest(out / f"train-{color}-{shape}-{clips}-replay{replay}.jsonl", lines)


def score(model: str, manifest: Path, out: Path, lora: Path | None) -> dict:
    """Generate every caption (seed = 1000 + line) with the model (+ adapter), score against the scenes."""
    import tenku
    from tenku.worldbench.report import score_manifest
    from tenku.worldbench.truth import write_like_world

    pipe = tenku.load_pipeline(model)
    if lora is not None:
        pipe.apply_lora(lora)
    entries = read_records(manifest)
    for i, e in enumerate(entries):
        video = pipe.generate(e["caption"], seed=1000 + i)
        write_like_world(out / "generated" / e["video"], video.frames, video.fps)
    return score_manifest(manifest, out / "generated", out, real_dir=manifest.parent, quiet=True)


def row(name: str, report: dict) -> str:
    s = report["summary"]
    return f"| {name} | " + " | ".join(f"{s[k]['mean']:.3f}" if k in s else "-" for k in SHOWN) + " |"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "tenku" / "assets" / "world-xs"), help="base model directory")
    p.add_argument("--color", default="red")
    p.add_argument("--shape", default="triangle")
    p.add_argument("--mix", default="uniform", choices=("simple", "uniform", "full"), help="scene mix of the pair's clips")
    p.add_argument("--clips", type=int, default=8, help="training clips of the pair")
    p.add_argument("--replay", type=int, default=128, help="clips of the simple world trained beside the pair"
                   " (fewer are memorised in turn, and the model forgets the rest)")
    p.add_argument("--eval", type=int, default=24, help="evaluation clips of the pair (another seed)")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--recipe", default=str(ROOT / "recipes" / "world-xs-dit-2stage-s6.yaml"),
                   help="the base model's training recipe (its conditioning mix); the model itself comes from --model")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--minutes", type=float, default=10, help="training minutes (at most)")
    p.add_argument("--steps", type=int, default=100000, help="training steps (at most): a few epochs of the data,"
                   " not minutes, is what keeps an adapter from memorising a handful of clips")
    p.add_argument("--subject-word", metavar="WORD", help="name the pair by this made-up word in every caption of it"
                   " (DreamBooth's setting: before the adapter the model cannot know what the word is)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "lora")
    args = p.parse_args(argv)
    word = args.subject_word
    train_m = training_manifest(args.out, args.color, args.shape, args.clips, args.replay, args.mix)
    train_m = with_subject_word(train_m, args.color, args.shape, word)
    eval_m = with_subject_word(pair_clips(args.out, 1, args.color, args.shape, args.eval, args.mix), args.color,
                               args.shape, word)
    cache = args.out / f"cache-{train_m.stem}"
    run = args.out / f"run-{train_m.stem}-r{args.rank}-lr{args.lr:g}-s{args.steps}"
    tenku("cache", "--model", args.model, "--manifest", str(train_m), "--out", str(cache), "-q")
    sets = {"init_from": args.model, "lora_rank": args.rank, "max_train_minutes": args.minutes, "batch_size": 8,
            "lr": args.lr, "warmup_steps": 20, "steps": args.steps, "checkpoint_every": 100, "progress": "false",
            "compile": "off"}  # a short run: compiling would take a good part of it
    cmd = ["train", "dit", "--config", args.recipe, "--data", str(cache), "--out", str(run)] + [x for k, v in sets.items() for x in ("--set", f"{k}={v}")]
    tenku(*cmd, *(["--resume"] if (run / "config.json").is_file() else []))
    tag = f"-{word}" if word else ""
    before = score(args.model, eval_m, args.out / f"before{tag}", None)
    after = score(args.model, eval_m, args.out / f"after{tag}", run / "lora")
    size = sum(f.stat().st_size for f in (run / "lora").iterdir()) / 1e6
    minutes = max(json.loads(x).get("train_seconds", 0) for x in (run / "metrics.jsonl").read_text().splitlines()
                  if x.startswith("{")) / 60
    named = f", named '{word}' in every caption of it" if word else ""
    print(f"WorldBench on {args.eval} clips of a {args.color} {args.shape}{named} ({args.mix} mix, held out of training);"
          f" LoRA rank {args.rank} on {args.clips} clips (+ their first frames, + {args.replay} replay clips), {minutes:.1f} training minutes, adapter {size:.2f} MB\n")
    print("| model | " + " | ".join(k.replace("_", " ") for k in SHOWN) + " |\n|" + "---|" * (len(SHOWN) + 1))
    print(row("default", before))
    print(row("default + LoRA", after))
    print(row("detector floor (the real clips)", {"summary": before["floor"]}))
    for name, summary in before["chance"].items():
        print(row(f"chance: {name}", {"summary": summary}))


if __name__ == "__main__":
    main()
