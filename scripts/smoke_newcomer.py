"""The newcomer's path, checked after the README's first command has run in a fresh clone (see .ci/run).

    .venv/bin/python scripts/smoke_newcomer.py VIDEO

1. VIDEO (the README command's output) decodes to the shipped model's default frame count and size.
2. `python -m tenku --help` and every sub-command's `--help` (nested ones too) exit 0.
3. With the optional extras hidden (the server's packages, diffusers, the test tools), as after a plain
   `pip install tenku`: every `--help` still works, `tenku generate` still writes a video, and `tenku serve`
   exits 2 with the one-line install hint. An optional package imported at module level anywhere on those
   paths fails this check.
Exits non-zero with the reason on the first failure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

OPTIONAL = ["fastapi", "uvicorn", "multipart", "starlette", "pydantic", "httpx", "diffusers", "pytest", "playwright"]
# Run tenku's CLI in a child process where importing any optional package fails as if it were not installed.
HIDE = """
import importlib.abc, sys
HIDDEN = {hidden!r}
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Hide())
import importlib.util
_find = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a, **k: None if name.split('.')[0] in HIDDEN else _find(name, *a, **k)
from tenku.cli import main
sys.argv = ['tenku'] + {argv!r}
sys.exit(main(sys.argv[1:]))
"""


def fail(msg: str) -> None:
    print(f"smoke: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run(argv: list[str], hide: bool = False) -> subprocess.CompletedProcess:
    if hide:
        cmd = [sys.executable, "-c", HIDE.format(hidden=OPTIONAL, argv=argv)]
    else:
        cmd = [sys.executable, "-m", "tenku", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def check_video(path: Path) -> None:
    from tenku.data.video_io import read_video

    cfg = json.loads((Path(__import__("tenku").__file__).parent / "assets/world-xs/config.json").read_text())["sample"]
    if not path.is_file():
        fail(f"{path} was not written")
    frames = read_video(path)[0]  # (T, H, W, 3) uint8
    want = (cfg["frames"], cfg["height"], cfg["width"], 3)
    if tuple(frames.shape) != want:
        fail(f"{path} decodes to {tuple(frames.shape)}, expected {want} (the default model's frames, height, width)")
    print(f"smoke: {path}: {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]}, as the default model says")


def commands(parser: argparse.ArgumentParser, prefix: list[str]) -> list[list[str]]:
    """Every sub-command path of an argparse parser, e.g. [['generate'], ['world', 'make'], ...]."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append(prefix + [name])
                out += commands(sub, prefix + [name])
    return out


def check_help(hide: bool) -> None:
    from tenku.cli import build_parser

    paths = [[]] + commands(build_parser(), [])
    for path in paths:
        r = run(path + ["--help"], hide=hide)
        if r.returncode != 0:
            fail(f"`tenku {' '.join(path)} --help`{' without extras' if hide else ''} exited {r.returncode}:\n"
                 f"{r.stderr[-2000:]}")
    print(f"smoke: {len(paths)} `--help` commands exit 0{' with the optional extras hidden' if hide else ''}")


def check_without_extras() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "plain.mp4"
        r = run(["generate", "a red ball bounces to the right", "-o", str(out), "--steps", "2", "-q"], hide=True)
        if r.returncode != 0:
            fail(f"`tenku generate` without the optional extras exited {r.returncode}:\n{r.stderr[-2000:]}")
        check_video(out)
    r = run(["serve"], hide=True)
    lines = r.stderr.strip().splitlines()
    if r.returncode != 2 or len(lines) != 1 or "tenku serve needs the server extras: pip install 'tenku[serve]'" not in r.stderr:
        fail(f"`tenku serve` without fastapi: exit {r.returncode}, stderr:\n{r.stderr[-2000:]}")
    print("smoke: without the extras, generate works and `tenku serve` exits 2 with the install hint")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", type=Path, help="the file the README's first command wrote")
    args = p.parse_args()
    check_video(args.video)
    check_help(hide=False)
    check_help(hide=True)
    check_without_extras()
    print("smoke: newcomer path OK")


if __name__ == "__main__":
    main()
