"""Long videos (up to an hour) by a sliding window over time, and storyboards (a prompt per time range).

The pipeline decides when (tenku/request.py: text-to-video longer than one window, the model's `max_frames`,
or a storyboard); this module makes the windows. Each window is a clip of the window's length. Window 0 is
plain text-to-video; every later window is an extension forward of the last `history` pixel frames of the
one before (re-encoded as the start of a fresh clip, so the given latents are exactly the kind the model
was trained with), and only its new frames are kept. The frames are yielded window by window, so a caller
that streams them into an mp4 (Pipeline.save) keeps working memory flat, and time grows linearly. A
storyboard switches the prompt at window boundaries without cutting the scene: the history frames carry it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import torch

from tenku.request import Checked, GenerateRequest, prompt_at


def windows(pipe, checked: Checked, callback: Callable[[int, int], None] | None = None) -> Iterator[torch.Tensor]:
    """A checked long request's frames, window by window: each window's new frames (n, H, W, 3) uint8.
    callback(step, total) counts sampler steps over the whole video."""
    req, plan = checked.request, checked.windows
    tail = None  # the last `history` frames made so far, (history, H, W, 3) uint8
    for i, (start, count) in enumerate(plan):
        prompt = prompt_at(list(checked.shots), start / req.fps)
        progress = None if callback is None else _overall(callback, i, len(plan))
        if tail is None:
            clip = replace(req, mode="text", frames=req.window)
            frames = pipe.generate_clip(clip, prompt, progress)[:count]
        else:
            # Continue from the last `history` frames; the new frames are those after them.
            clip = replace(req, mode="extend", video=tail, direction="forward", frames=req.window - req.history,
                           seed=req.seed + i)
            frames = pipe.generate_clip(clip, prompt, progress)[len(tail): len(tail) + count]
        yield frames
        tail = torch.cat([tail, frames])[-req.history:] if tail is not None else frames[-req.history:]
        if len(tail) < req.history:  # a first window shorter than the history: nothing more to come
            tail = None


def _overall(callback: Callable[[int, int], None], window: int, windows: int) -> Callable[[int, int], None]:
    """A window's callback(step, steps) as steps over the whole video."""
    return lambda step, steps: callback(window * steps + step, windows * steps)


def generate_long(pipe, prompt: str, seconds: float, output: str | Path, fps: float | None = None,
                  height: int | None = None, width: int | None = None, window: int | None = None, history: int = 5,
                  seed: int = 0, steps: int | None = None, guidance: float | None = None, sampler: str | None = None,
                  callback: Callable[[int, int], None] | None = None) -> Path:
    """`seconds` of text-to-video streamed into `output` (for scripts; Pipeline.save with a GenerateRequest is
    the same): window by window when longer than `window` (default: the model's max_frames) or a storyboard,
    else one clip. callback(window, windows) after each window."""
    request = GenerateRequest(prompt, seconds=seconds, fps=fps, height=height, width=width, window=window,
                              history=history, seed=seed, steps=steps, guidance=guidance, sampler=sampler)
    checked = pipe.check(request)
    n = len(checked.windows or [None])

    def per_window(step: int, total: int) -> None:
        if callback is not None and step % (total // n) == 0:
            callback(step // (total // n), n)

    pipe.save(request, output, per_window)
    return Path(output)
