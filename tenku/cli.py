"""The `tenku` command. Each feature registers its own sub-command (`register_cli(subparsers)`)."""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from contextlib import contextmanager
from pathlib import Path

from tenku.cli_args import add_device, add_precision, run

# Feature modules that add sub-commands.
FEATURES = ["tenku.world.cli", "tenku.worldbench.cli", "tenku.data.cache", "tenku.train.loop", "tenku.serve.cli",
            "tenku.models.convert", "tenku.average"]


def cmd_generate(args) -> int:
    from tqdm import tqdm

    from tenku.data.video_io import check_writable
    from tenku.models.prompt_cache import default_dir
    from tenku.pipeline import load_pipeline
    from tenku.request import GenerateRequest
    from tenku.train.distributed import pick_device

    with kept_until_exit():
        # A prompt seen before is read from the user's prompt cache: no text encoder is loaded (TENKU_CACHE=off).
        pipe = load_pipeline(args.model, pick_device(args.device), prompt_cache=default_dir(),
                             precision=args.precision)
        if args.lora:
            pipe.apply_lora(args.lora, args.lora_scale)
        # 1. The flags as one request, checked before any work (None = the model's default; 0, NaN and negatives
        # are refused). The pipeline decides between one clip and a sliding window, as for the server.
        request = GenerateRequest.from_inputs(
            _read_storyboard(args.prompt), image=args.image, last_image=args.last_image, extend=args.extend,
            connect=args.connect, loop=args.loop, edit=args.edit, direction=args.direction, strength=args.strength,
            frames=args.frames, seconds=args.seconds, height=args.height, width=args.width, fps=args.fps,
            steps=args.steps, guidance=args.guidance, sampler=args.sampler, seed=args.seed, window=args.window,
            history=args.history)
        checked = pipe.check(request)
        out = _output_path(args.output, checked.one_frame)
        check_writable(out)  # a folder or an unwritable path fails now, not after the video is made
        # The prompts' text states now: on a cache miss this loads the text encoder, which lives until exit too.
        pipe.text_encoder.encode_tokens([shot.prompt for shot in checked.shots])
    # 2. Generate, streaming into the file.
    bar = None  # made at the first step, when its total is known (an empty bar would print "0step" first)

    def progress(step, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="sampling", unit="step", disable=args.quiet, file=sys.stderr)
        elif bar.total != total:
            bar.reset(total)
        bar.update(step - bar.n)

    pipe.save(request, out, progress)
    if bar is not None:
        bar.close()
    print(out)
    return 0


@contextmanager
def kept_until_exit():
    """For objects that live until the process ends (the libraries that loading imports, the models): the garbage
    collector is off while they are made and skips them afterwards (gc.freeze), since collecting them only walks
    them. Measured on the default command (issue 16, a loaded 2-core machine): 0.6 s of collections while
    loading and 1.1 s more at exit; the garbage kept is about 4,400 small objects (22 kB of tensors)."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _read_storyboard(prompt: str) -> str:
    """A prompt, or the text of a storyboard .json file it names."""
    path = Path(prompt.strip())
    return path.read_text() if path.suffix == ".json" and path.is_file() else prompt


def _output_path(output: str | None, single: bool) -> Path:
    """tenku.mp4 by default; one frame is a .png (the suffix is changed to say so); a video is never a .png."""
    out = Path(output or ("tenku.png" if single else "tenku.mp4"))
    if single and out.suffix.lower() != ".png":
        return out.with_suffix(".png")
    if not single and out.suffix.lower() == ".png":
        raise ValueError(f"output {out}: a PNG holds one frame; give an .mp4 path for a video (or --frames 1)")
    return out


def cmd_init_model(args) -> int:
    from tenku.pipeline import init_model

    print(init_model(args.dir, args.preset, args.seed))
    return 0


def build_parser(features: bool = True) -> argparse.ArgumentParser:
    """The whole command line; `features=False` leaves out the feature modules' sub-commands (and their imports)."""
    from tenku.config import PRESETS
    from tenku.flow.sampler import SAMPLERS

    p = argparse.ArgumentParser(prog="tenku", description="Text-to-video with a spacetime-patch diffusion transformer.")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate a video (or an image with --frames 1) from a prompt",
                       epilog="A prompt's text states are kept in $TENKU_CACHE/prompts (default ~/.cache/tenku), so "
                              "the same prompt again loads no text encoder; TENKU_CACHE=off turns this off.")
    g.add_argument("prompt", help="what the video shows; or a storyboard '0-5s: ...; 5-10s: ...' or a .json file")
    g.add_argument("-o", "--output", help="output file (.mp4, or .png for one frame); default tenku.mp4")
    n = g.add_mutually_exclusive_group()
    n.add_argument("--frames", type=int, help="frame count, 1 + 4k (1 = an image)")
    n.add_argument("--seconds", type=float, help="duration; rounded to the nearest valid frame count")
    g.add_argument("--fps", type=float, help="frames per second")
    g.add_argument("--height", type=int, help="pixels, a multiple of the model's stride (16 by default)")
    g.add_argument("--width", type=int, help="pixels, a multiple of the model's stride (16 by default)")
    g.add_argument("--steps", type=int, help="sampler steps")
    g.add_argument("--guidance", type=float, help="classifier-free guidance scale (1 = off); a two-stage model "
                   "guides its first frame by its own sample.image_guidance when set")
    g.add_argument("--sampler", choices=SAMPLERS, help="ODE solver")
    g.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same video")
    g.add_argument("--model", help="model directory (default: the model shipped with Tenku)")
    add_device(g, "the model")
    add_precision(g)
    g.add_argument("--lora", metavar="DIR", help="LoRA adapter folder (from `tenku train dit --set lora_rank=R`)")
    g.add_argument("--lora-scale", type=float, default=1.0, help="how much of the adapter's change to apply")
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
    for name in FEATURES if features else []:
        importlib.import_module(name).register_cli(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The commands defined in this file parse without importing the feature modules (start-up time, issue 16).
    own = bool(argv) and argv[0] in ("generate", "init-model")
    return run(build_parser(features=not own).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
