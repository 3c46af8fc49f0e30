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

    from .long_video import generate_long, parse_storyboard
    from .budget import MAX_VIDEO_FRAMES
    from .pipeline import check_number, load_pipeline
    from .video_io import check_writable

    pipe = load_pipeline(args.model)
    d = pipe.cfg.sample
    # 1. Every option checked before any work (None = the model's default; 0, NaN and negatives are refused).
    fps, _, _, _ = pipe.options(args.fps, args.steps, args.guidance, args.sampler)
    frames = pipe.frames_for_seconds(args.seconds, fps) if args.seconds is not None else args.frames
    if frames is not None:
        check_number("frames", frames, 1, MAX_VIDEO_FRAMES, integer=True, why="the longest video")
    given = any(x is not None for x in (args.image, args.last_image, args.extend, args.connect, args.edit))
    storyboard = len(parse_storyboard(args.prompt)) > 1
    long = not given and (storyboard or (d.frames if frames is None else frames) > d.max_frames)
    single = not long and (d.frames if frames is None else frames) == 1 and not (args.extend or args.connect or args.loop)
    out = _output_path(args.output, single)
    check_writable(out)  # a folder or an unwritable path fails now, not after the video is made
    bar = tqdm(desc="sampling", unit="step", disable=args.quiet, file=sys.stderr)

    def progress(step, total):
        if bar.total != total:
            bar.reset(total)
        bar.update(step - bar.n)

    # 2. Long videos and storyboards slide a window over time; everything else is one clip.
    if long:
        seconds = args.seconds if args.seconds is not None else (d.frames if frames is None else frames) / fps
        bar.set_description("windows")
        generate_long(pipe, args.prompt, seconds, out, fps=fps, height=args.height, width=args.width,
                      window=d.max_frames if args.window is None else args.window, history=args.history,
                      seed=args.seed, steps=args.steps, guidance=args.guidance, sampler=args.sampler,
                      callback=progress)
        bar.close()
        print(out)
        return 0
    if frames is not None and not given:  # fail before any work
        pipe.check_size(frames, d.height if args.height is None else args.height,
                        d.width if args.width is None else args.width)
    video = pipe.generate(args.prompt, frames=frames, height=args.height, width=args.width, fps=fps, steps=args.steps,
                          guidance=args.guidance, sampler=args.sampler, seed=args.seed, callback=progress,
                          image=args.image, last_image=args.last_image, extend=args.extend, direction=args.direction,
                          connect=args.connect, loop=args.loop, edit=args.edit, strength=args.strength)
    bar.close()
    print(video.save(_output_path(args.output, len(video.frames) == 1)))
    return 0


def _output_path(output: str | None, single: bool) -> Path:
    """tenku.mp4 by default; one frame is a .png (the suffix is changed to say so); a video is never a .png."""
    out = Path(output or ("tenku.png" if single else "tenku.mp4"))
    if single and out.suffix.lower() != ".png":
        return out.with_suffix(".png")
    if not single and out.suffix.lower() == ".png":
        raise ValueError(f"output {out}: a PNG holds one frame; give an .mp4 path for a video (or --frames 1)")
    return out


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
    g.add_argument("prompt", help="what the video shows; or a storyboard '0-5s: ...; 5-10s: ...' or a .json file")
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
    c = g.add_argument_group("conditioning (given frames are kept exactly)")
    c.add_argument("--image", help="image-to-video: this image is the first frame")
    c.add_argument("--last-image", help="this image is the last frame (with --image: interpolate between them)")
    c.add_argument("--extend", metavar="VIDEO", help="continue this video; --frames/--seconds count the new part")
    c.add_argument("--direction", choices=["forward", "backward"], default="forward",
                   help="--extend after the video's end (forward) or before its start (backward)")
    c.add_argument("--connect", nargs=2, metavar=("A", "B"), help="generate a transition so that video A flows into B")
    c.add_argument("--loop", action="store_true", help="make the last frame flow into the first")
    c.add_argument("--edit", metavar="VIDEO", help="re-generate this video from the prompt (SDEdit)")
    c.add_argument("--strength", type=float, default=0.6, help="--edit: 0 keeps the video, 1 ignores it")
    lg = g.add_argument_group("long video (longer than the model's max_frames, or a storyboard prompt)")
    lg.add_argument("--window", type=int, help="frames per window (default: the model's max_frames)")
    lg.add_argument("--history", type=int, default=5, help="frames each window continues from (1 + 4k)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("init-model", help="write a randomly initialised model directory")
    i.add_argument("dir", help="output directory")
    i.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="model size")
    i.add_argument("--seed", type=int, default=0, help="initialisation seed")
    i.set_defaults(func=cmd_init_model)

    # Feature modules import only the standard library and core dependencies at module level (optional
    # extras such as the server's are imported when their command runs), so a failure here is a bug.
    for name in FEATURES:
        importlib.import_module(name).register_cli(sub)
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
