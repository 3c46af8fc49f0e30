"""One pattern for every `tenku` sub-command.

- Lists are space-separated (argparse's nargs="+"): `--sizes 64x64 48x80`, `--frames 1 9 17`.
- A size is HEIGHTxWIDTH in pixels (`size`).
- `--device` takes auto, cpu or cuda; the default, auto, is CUDA when there is one (`add_device`).
- `--precision` (generating commands) takes auto, fp32 or bf16 (`add_precision`).
- Bad input exits with status 2 and one line, `tenku: error: ...`, as argparse does for a bad flag (`run`).
"""

from __future__ import annotations

import argparse
import sys

from tenku.precision import PRECISIONS
from tenku.train.distributed import DEVICES

BAD_INPUT = (ValueError, FileNotFoundError)  # a clear message names the problem; anything else is a bug


def size(text: str) -> tuple[int, int]:
    """An argparse type: "64x112" -> (64, 112) as (height, width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must look like HEIGHTxWIDTH, e.g. 64x112") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"size {text!r}: height and width must be positive")
    return h, w


def add_device(parser: argparse.ArgumentParser, what: str = "the models") -> None:
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help=f"device for {what}: auto (CUDA when there is one), cpu or cuda")


def add_precision(parser: argparse.ArgumentParser) -> None:
    """The DiT's arithmetic while sampling (tenku/precision.py)."""
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="the DiT's arithmetic while sampling: fp32 (default), bf16 autocast, or auto (bf16 where"
                        " the hardware multiplies it natively: CUDA, CPUs with AVX512-BF16/AMX/Arm BF16)")


def run(args: argparse.Namespace, prog: str = "tenku") -> int:
    """Call the sub-command chosen on the command line (`args.func`); bad input -> one line on stderr, exit 2."""
    try:
        return args.func(args) or 0
    except BAD_INPUT as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
