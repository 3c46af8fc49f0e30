"""`tenku world make`: write a Tenku World data set (mp4s + manifest.jsonl). Also `python -m tenku.world make`."""

from __future__ import annotations

import argparse
import time

from tenku.cli_args import run, size
from tenku.world.sample import MIXES, SPLITS


def cmd_make(args) -> int:
    from tenku.world.make import make_dataset

    sizes = args.sizes or [(args.height, args.width)]
    frames = args.frames_choices or [args.frames]
    start = time.perf_counter()
    manifest = make_dataset(args.out, args.count, args.split, args.seed, sizes, frames, args.fps,
                            workers=args.workers, crf=args.crf, progress=not args.quiet, mix=args.mix)
    seconds = time.perf_counter() - start
    print(f"{manifest}  ({args.count} clips in {seconds:.1f} s, {args.count / seconds:.1f} clips/s)")
    return 0


def add_make_parser(subparsers) -> None:
    m = subparsers.add_parser("make", help="write N captioned physics clips and a manifest.jsonl")
    m.add_argument("--out", required=True, help="output folder (videos/ and manifest.jsonl go here)")
    m.add_argument("--count", type=int, required=True, help="number of clips")
    m.add_argument("--split", default="train", choices=SPLITS, help="which distribution to draw from")
    m.add_argument("--mix", default="full", choices=sorted(MIXES),
                   help="scene mix: full (the world), simple (one object: uniform, bounce, fall; plain"
                        " backgrounds) or uniform (one object in uniform motion)")
    m.add_argument("--seed", type=int, default=0, help="data set seed; the same seed gives the same files")
    m.add_argument("--height", type=int, default=64, help="frame height in pixels (ignored with --sizes)")
    m.add_argument("--width", type=int, default=64, help="frame width in pixels (ignored with --sizes)")
    m.add_argument("--sizes", nargs="+", type=size, metavar="HxW",
                   help="a mix of sizes, HEIGHTxWIDTH, e.g. 64x64 48x80 80x48")
    m.add_argument("--frames", type=int, default=17, help="frames per clip (ignored with --frames-choices)")
    m.add_argument("--frames-choices", nargs="+", type=int, metavar="N",
                   help="a mix of frame counts, e.g. 1 9 17 33 (repeat one to draw it more often)")
    m.add_argument("--fps", type=float, default=8.0, help="frames per second")
    m.add_argument("--crf", type=int, default=12, help="H.264 quality (lower = closer colours, bigger files)")
    m.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    m.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=cmd_make)


def register_cli(subparsers) -> None:
    """Add `world` (with its `make` sub-command) to the `tenku` command's subparsers."""
    w = subparsers.add_parser("world", help="Tenku World: procedural captioned physics videos")
    sub = w.add_subparsers(dest="world_command", required=True)
    add_make_parser(sub)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tenku.world", description=__doc__)
    add_make_parser(p.add_subparsers(dest="world_command", required=True))
    return run(p.parse_args(argv), "python -m tenku.world")
