"""Long videos (up to minutes) by a sliding window over time, and storyboards (a prompt per time range).

Each window is a clip of the model's native length. Window 0 is plain text-to-video; every later window
is an extension forward of the last `history` pixel frames of the one before (re-encoded as the start of
a fresh clip, so the given latents are exactly the kind the model was trained with), and only its new
frames are written. Frames stream into the mp4 as they are made, so working memory does not grow with
the length and time grows linearly. A storyboard switches the prompt at window boundaries without
cutting the scene: the history frames carry it over.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .budget import MAX_VIDEO_FRAMES
from .pipeline import check_number
from .video_io import VideoWriter


@dataclass
class Shot:
    start: float  # seconds
    end: float
    prompt: str


_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:s)?\s*-\s*(\d+(?:\.\d+)?)\s*s?\s*:\s*(.+?)\s*$")


def parse_storyboard(text: str) -> list[Shot]:
    """'0-5s: a red ball rolls right; 5-10s: it falls', a JSON list of {start, end, prompt}, or a path to
    a .json file. A plain prompt is one shot covering everything. Ranges must be contiguous from 0."""
    if text.strip().endswith(".json") and Path(text.strip()).is_file():
        text = Path(text.strip()).read_text()
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
            shots = [Shot(float(d["start"]), float(d["end"]), str(d["prompt"])) for d in items]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"storyboard JSON must be a list of {{start, end, prompt}}: {e}") from None
    elif _RANGE.match(stripped.split(";")[0]):
        shots = []
        for i, part in enumerate(p for p in stripped.split(";") if p.strip()):
            m = _RANGE.match(part)
            if not m:
                raise ValueError(f"storyboard part {i + 1} {part.strip()!r} is not 'START-ENDs: prompt'")
            shots.append(Shot(float(m[1]), float(m[2]), m[3]))
    else:
        return [Shot(0.0, float("inf"), stripped)]
    t = 0.0
    for s in shots:
        if not s.prompt.strip():
            raise ValueError(f"storyboard shot {s.start}-{s.end}s has no prompt")
        if abs(s.start - t) > 1e-6 or s.end <= s.start:
            raise ValueError(f"storyboard ranges must be contiguous from 0 s; got {s.start}-{s.end}s after {t}s")
        t = s.end
    return shots


def prompt_at(shots: list[Shot], seconds: float) -> str:
    for s in shots:
        if s.start <= seconds < s.end:
            return s.prompt
    return shots[-1].prompt  # past the last range: keep the last prompt


def window_plan(total_frames: int, window: int, history: int) -> list[tuple[int, int]]:
    """(first new frame, number of new frames) per window; the first window has no history."""
    if window < 1 or history < 1 or (window - 1) % 4 or (history - 1) % 4 or history >= window:
        raise ValueError(f"window ({window}) and history ({history}) must be 1 + 4k with history < window")
    plan = [(0, min(window, total_frames))]
    while (done := plan[-1][0] + plan[-1][1]) < total_frames:
        plan.append((done, min(window - history, total_frames - done)))
    return plan


def generate_long(pipe, prompt: str, seconds: float, output: str | Path, fps: float | None = None,
                  height: int | None = None, width: int | None = None, window: int | None = None, history: int = 5,
                  seed: int = 0, steps: int | None = None, guidance: float | None = None, sampler: str | None = None,
                  callback: Callable[[int, int], None] | None = None) -> Path:
    """Generate `seconds` of video into `output`, window by window. callback(window, windows) after each."""
    shots = parse_storyboard(prompt)
    d = pipe.cfg.sample
    # Every option checked before the first window (None = the model's default; 0 is refused, not defaulted).
    fps, steps, guidance, sampler = pipe.options(fps, steps, guidance, sampler)
    height, width = (d.height if height is None else height), (d.width if width is None else width)
    window = d.frames if window is None else window
    check_number("seconds", seconds, 1e-3, MAX_VIDEO_FRAMES / fps, why=f"the longest video is {MAX_VIDEO_FRAMES} frames")
    total = max(1, round(seconds * fps))
    plan = window_plan(total, window, history)
    pipe.check_size(window, height, width, history)
    output = Path(output)
    args = dict(height=height, width=width, fps=fps, steps=steps, guidance=guidance, sampler=sampler)
    tail = None
    with VideoWriter(output, fps) as writer:
        for i, (start, count) in enumerate(plan):
            text = prompt_at(shots, start / fps)
            if tail is None:
                frames = pipe.generate(text, frames=window, seed=seed, **args).frames.numpy()[:count]
            else:
                # Continue from the last `history` frames; the new frames are those after them.
                out = pipe.generate(text, extend=tail, direction="forward", frames=window - history,
                                    seed=seed + i, **args).frames.numpy()
                frames = out[len(tail): len(tail) + count]
            writer.write(frames)
            tail = np.concatenate([tail, frames])[-history:] if tail is not None else frames[-history:]
            if len(tail) < history:  # a first window shorter than the history: nothing more to come
                tail = None
            if callback is not None:
                callback(i + 1, len(plan))
    return output
