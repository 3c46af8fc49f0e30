"""The `tenku` command. Each feature registers its own sub-command (`register_cli(subparsers)`)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# Feature modules that add sub-commands.
FEATURES = ["tenku.world.cli", "tenku.worldbench.cli", "tenku.cache", "tenku.train", "tenku.serve.cli"]


def cmd_generate(args) -> int:
    from tqdm import tqdm

    from .pipeline import load_pipeline

    pipe = load_pipeline(args.model)
    d = pipe.cfg.sample
    fps = args.fps or d.fps
    frames = args.frames
    if args.seconds is not None:
        frames = pipe.frames_for_seconds(args.seconds, fps)
    frames = frames or d.frames
    height, width = args.height or d.height, args.width or d.width
    pipe.check_size(frames, height, width)  # fail before any work
    out = Path(args.output or ("tenku.png" if frames == 1 else "tenku.mp4"))
    if frames == 1 and out.suffix.lower() != ".png":
        out = out.with_suffix(".png")
    bar = tqdm(total=args.steps or d.steps, desc="sampling", unit="step", disable=args.quiet, file=sys.stderr)

    def progress(step, total):
        bar.total = total
        bar.update(step - bar.n)

    video = pipe.generate(args.prompt, frames=frames, height=height, width=width, fps=fps, steps=args.steps,
                          guidance=args.guidance, sampler=args.sampler, seed=args.seed, callback=progress)
    bar.close()
    print(video.save(out))
    return 0


def cmd_init_model(args) -> int:
    from .pipeline import init_model

    print(init_model(args.dir, args.preset, args.seed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .config import PRESETS
    from .sampler import SAMPLERS

    p = argparse.ArgumentParser(prog="tenku", description="Text-to-video with a spacetime-patch diffusion transformer.")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate a video (or an image with --frames 1) from a prompt")
    g.add_argument("prompt", help="what the video shows")
    g.add_argument("-o", "--output", help="output file (.mp4, or .png for one frame); default tenku.mp4")
    n = g.add_mutually_exclusive_group()
    n.add_argument("--frames", type=int, help="frame count, 1 + 4k (1 = an image)")
    n.add_argument("--seconds", type=float, help="duration; rounded to the nearest valid frame count")
    g.add_argument("--fps", type=float, help="frames per second")
    g.add_argument("--height", type=int, help="pixels, a multiple of the model's stride (16 by default)")
    g.add_argument("--width", type=int, help="pixels, a multiple of the model's stride (16 by default)")
    g.add_argument("--steps", type=int, help="sampler steps")
    g.add_argument("--guidance", type=float, help="classifier-free guidance scale (1 = off)")
    g.add_argument("--sampler", choices=SAMPLERS, help="ODE solver")
    g.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same video")
    g.add_argument("--model", help="model directory (default: the model shipped with Tenku)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("init-model", help="write a randomly initialised model directory")
    i.add_argument("dir", help="output directory")
    i.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="model size")
    i.add_argument("--seed", type=int, default=0, help="initialisation seed")
    i.set_defaults(func=cmd_init_model)

    for name in FEATURES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):  # the feature is not in this build; anything else is a bug
                continue
            raise
        module.register_cli(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError) as e:
        print(f"tenku: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
