"""A fast, deterministic stand-in for the pipeline: a test aid for the server, not a model.

It has the pipeline's interface (docs/api.md: `generate`, `check_size`, `cfg.sample`, `modes`,
`spatial_stride`) and draws a moving colour pattern from the prompt and seed, calling `callback(step, total)`
after each of its `steps` with a short sleep, so progress, cancellation and ordering behave as with a real
model. `tenku serve --fake-pipeline` (or TENKU_SERVE_FAKE=1) serves it; TENKU_FAKE_STEP_S sets the sleep.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from ..video_io import read_video, write_video


@dataclass
class FakeVideo:
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float

    def save(self, path):
        return write_video(path, self.frames, self.fps)


@dataclass
class FakePipeline:
    step_seconds: float = field(default_factory=lambda: float(os.environ.get("TENKU_FAKE_STEP_S", "0.02")))
    modes: set = field(default_factory=lambda: {"text", "image", "extend", "connect", "loop", "edit"})
    spatial_stride: int = 16
    calls: list = field(default_factory=list)  # (prompt, kwargs) of every generate, for tests

    def __post_init__(self):
        self.cfg = SimpleNamespace(sample=SimpleNamespace(frames=9, max_frames=33, height=32, width=32, fps=8,
                                                          steps=4, guidance=4.0, sampler="euler"))

    def check_size(self, frames: int, height: int, width: int):
        s, errors = self.spatial_stride, []
        if frames < 1 or (frames - 1) % 4:
            lo = 1 + 4 * max(0, (frames - 1) // 4)
            errors.append(f"frames must be 1 + 4k (got {frames}; nearest valid: {lo} or {lo + 4})")
        for name, v in (("height", height), ("width", width)):
            if v < s or v % s:
                near = sorted({n for n in (v // s * s, -(-v // s) * s) if n >= s}) or [s]
                errors.append(f"{name} must be a positive multiple of {s} (got {v}; nearest valid: "
                              f"{' or '.join(map(str, near))})")
        if errors:
            raise ValueError("; ".join(errors))
        return (frames - 1) // 4 + 1, height // 8, width // 8

    def frames_for_seconds(self, seconds: float, fps: float) -> int:
        return 1 + 4 * max(0, round((seconds * fps - 1) / 4))

    def generate(self, prompt, frames=None, height=None, width=None, fps=None, steps=None, guidance=None,
                 sampler=None, seed=0, callback=None, image=None, last_image=None, extend=None,
                 direction="forward", connect=None, loop=False, edit=None, strength=0.6) -> FakeVideo:
        d = self.cfg.sample
        self.calls.append((prompt, dict(frames=frames, height=height, width=width, image=image, last_image=last_image,
                                        extend=extend, direction=direction, connect=connect, loop=loop, edit=edit)))
        given = [read_video(p)[0] for p in (image, last_image, extend, edit, *(connect or ())) if p is not None]
        frames, fps, steps = frames or d.frames, fps or d.fps, steps or d.steps
        height = height or (given[0].shape[1] if given else d.height)
        width = width or (given[0].shape[2] if given else d.width)
        self.check_size(frames if extend is None and connect is None else 1, height, width)
        for step in range(1, steps + 1):
            time.sleep(self.step_seconds)
            if callback is not None:
                callback(step, steps)
        key = int.from_bytes(hashlib.sha256(f"{prompt}|{seed}".encode()).digest()[:4], "little")
        colour = np.array([key & 255, (key >> 8) & 255, (key >> 16) & 255], dtype=np.int64)
        t = np.arange(frames)[:, None, None, None]
        y, x = np.arange(height)[None, :, None, None], np.arange(width)[None, None, :, None]
        out = ((colour + 8 * t + 2 * x + y) % 256).astype(np.uint8)  # (T, H, W, 3)
        if extend is not None:  # the given video is kept whole, as the pipeline does
            out = np.concatenate([given[0], out] if direction == "forward" else [out, given[0]])
        elif connect is not None:
            out = np.concatenate([given[0], out, given[1]])
        return FakeVideo(out, fps)
