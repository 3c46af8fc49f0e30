"""`tenku worldbench score` (score videos against a manifest's scenes or captions) and `tenku worldbench run`
(make a world split, generate each caption with a model, score against the scenes)."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from tenku.cli_args import add_device, add_precision
from tenku.train.distributed import pick_device
from tenku.worldbench.truth import MIXES, SPLITS

GIVEN = ("none", "first")  # what of the true scene the model is given: nothing (text-to-video), its first frame


def nothing_scored(report: dict) -> int:
    """Exit status 2 with a message naming the first failures when not one clip could be scored (typically a
    --videos folder that is not the one the manifest's `video` paths are relative to); else 0."""
    if report["scored"]:
        return 0
    why = "; ".join(f"{f['id']}: {f['error']}" for f in report["failed"][:2]) or "the manifest has no clips"
    print(f"worldbench: nothing could be scored: 0 of {len(report['clips'])} clips under {report['videos']} "
          f"({why}). --videos must be the folder the manifest's `video` paths are relative to.", file=sys.stderr)
    return 2


def cmd_score(args) -> int:
    from tenku.worldbench.report import score_manifest

    return nothing_scored(score_manifest(args.manifest, args.videos, args.out, floor_count=args.floor_count))


def run_benchmark(pipe, out_dir, split: str = "id", count: int = 8, seed: int = 0, frames: int = 17,
                  height: int = 64, width: int = 64, fps: float = 8.0, steps=None, guidance=None,
                  quiet: bool = False, floor_count: int = 8, mix: str = "full", given: str = "none") -> dict:
    """Make the world split's manifest (and its ground-truth videos), generate each caption with `pipe` (any
    object with `.generate(prompt, frames=, height=, width=, fps=, steps=, guidance=, seed=)` returning
    `.frames` (T, H, W, 3) uint8 and `.fps`), then score the generated videos against the scenes. `mix`: the
    world's scene mix (MIXES). `given="first"` animates each scene's true first frame (`image=`): the scene's
    layout is then given, so the scores measure motion alone, apart from where the text put the objects."""
    from tenku.data.clips import read_records
    from tenku.data.video_io import read_video
    from tenku.worldbench.report import score_manifest
    from tenku.worldbench.truth import make_split, write_like_world

    if given not in GIVEN:
        raise ValueError(f"given must be one of {GIVEN}, got {given!r}")
    out_dir = Path(out_dir)
    manifest = make_split(out_dir / "world", split, count, seed, height, width, frames, fps, mix=mix,
                          progress=not quiet)
    entries = read_records(manifest)
    for i, e in enumerate(tqdm(entries, desc="generate", unit="clip", disable=quiet)):
        extra = {"image": read_video(out_dir / "world" / e["video"], max_frames=1)[0]} if given == "first" else {}
        video = pipe.generate(e["caption"], frames=frames, height=height, width=width, fps=fps, steps=steps,
                              guidance=guidance, seed=seed + i, **extra)
        # Written like the world's own clips (full-resolution colour), so the printed floor applies to them.
        write_like_world(out_dir / "generated" / e["video"], video.frames, video.fps)
    return score_manifest(manifest, out_dir / "generated", out_dir, floor_count=floor_count,
                          real_dir=out_dir / "world", quiet=quiet)


def cmd_run(args) -> int:
    import tenku

    pipe = tenku.load_pipeline(args.model, pick_device(args.device), precision=args.precision)
    report = run_benchmark(pipe, args.out, args.split, args.count, args.seed, args.frames, args.height,
                           args.width, args.fps, args.steps, args.guidance, floor_count=args.floor_count,
                           mix=args.mix, given=args.given)
    return nothing_scored(report)


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("worldbench", help="analytic evaluation of generated videos (physics, attributes)")
    sub = p.add_subparsers(dest="worldbench_command", required=True)

    s = sub.add_parser("score", help="score videos against a manifest's scene specs or captions")
    s.add_argument("--manifest", required=True, help="manifest.jsonl (docs/manifest.md)")
    s.add_argument("--videos", required=True, help="folder the manifest's `video` paths are relative to")
    s.add_argument("--out", default="worldbench", help="where report.json, report.md and contact_sheet.png go")
    s.add_argument("--floor-count", type=int, default=8,
                   help="ground-truth clips rendered from the manifest's scenes for the floor and chance rows")
    s.set_defaults(func=cmd_score)

    r = sub.add_parser("run", help="make a world split, generate its captions with a model, score them")
    r.add_argument("--model", help="model directory (default: the model shipped with Tenku)")
    add_device(r, "the model")
    add_precision(r)
    r.add_argument("--split", default="id", choices=SPLITS, help="world split")
    r.add_argument("--mix", default="full", choices=tuple(MIXES), help="scene mix of the split")
    r.add_argument("--count", type=int, default=8, help="clips")
    r.add_argument("--seed", type=int, default=0, help="world and sampling seed")
    r.add_argument("--frames", type=int, default=17, help="frames per clip")
    r.add_argument("--height", type=int, default=64, help="pixels")
    r.add_argument("--width", type=int, default=64, help="pixels")
    r.add_argument("--fps", type=float, default=8.0, help="frames per second")
    r.add_argument("--steps", type=int, help="sampler steps (default: the model's)")
    r.add_argument("--guidance", type=float, help="guidance scale (default: the model's; a two-stage model's "
                   "first frame keeps its sample.image_guidance when set)")
    r.add_argument("--given", default="none", choices=GIVEN,
                   help="first: animate each scene's true first frame (motion alone, the layout given)")
    r.add_argument("--out", default="worldbench", help="output folder")
    r.add_argument("--floor-count", type=int, default=8,
                   help="unused by run: the floor and chance rows are measured on every ground-truth clip")
    r.set_defaults(func=cmd_run)
