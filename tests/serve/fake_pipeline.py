"""A fast, deterministic stand-in for the pipeline: a test aid for the server, not a model.

It has the part of the pipeline's interface the server uses (`cfg`, `memory_budget`, `modes`,
`check(request)`, `save(request, path, callback)`), validates requests exactly as the pipeline does (the tiny
preset's config), and draws a moving colour pattern from the prompt and seed, calling `callback(step, total)`
after each of its `steps` with a short sleep, so progress, cancellation and ordering behave as with a real
model. TENKU_FAKE_STEP_S sets the sleep. It lives with the tests, not in the package; as a program,
`python tests/fake_pipeline.py [tenku serve options]` serves it through `tenku serve`'s own code path.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

import numpy as np

from tenku.budget import memory_budget
from tenku.config import ModelConfig, preset
from tenku.request import Checked, GenerateRequest
from tenku.data.video_io import read_video, write_video


@dataclass
class FakePipeline:
    step_seconds: float = field(default_factory=lambda: float(os.environ.get("TENKU_FAKE_STEP_S", "0.02")))
    modes: set = field(default_factory=lambda: {"text", "image", "extend", "connect", "loop", "edit"})
    cfg: ModelConfig = field(default_factory=lambda: preset("tiny"))  # 32x32, 9 frames (max 33) at 8 fps, 4 steps
    memory_budget: int = field(default_factory=memory_budget)
    calls: list = field(default_factory=list)  # (prompt, given inputs by the old keywords) of every job, for tests

    def check(self, request: GenerateRequest) -> Checked:
        return request.validate(self.cfg, self.memory_budget)

    def save(self, request: GenerateRequest, path, callback=None) -> int:
        r = self.check(request).request
        self.calls.append((r.prompt, dict(frames=r.frames, height=r.height, width=r.width, image=r.image,
                                          last_image=r.last_image, extend=r.video if r.mode == "extend" else None,
                                          direction=r.direction, loop=r.mode == "loop",
                                          connect=(r.video_a, r.video_b) if r.mode == "connect" else None,
                                          edit=r.video if r.mode == "edit" else None)))
        for step in range(1, r.steps + 1):
            time.sleep(self.step_seconds)
            if callback is not None:
                callback(step, r.steps)
        given = {name: read_video(src)[0] for name, src in r.inputs().items()}
        frames = r.frames if r.frames is not None else len(given["video"])
        key = int.from_bytes(hashlib.sha256(f"{r.prompt}|{r.seed}".encode()).digest()[:4], "little")
        colour = np.array([key & 255, (key >> 8) & 255, (key >> 16) & 255], dtype=np.int64)
        t = np.arange(frames)[:, None, None, None]
        y, x = np.arange(r.height)[None, :, None, None], np.arange(r.width)[None, None, :, None]
        out = ((colour + 8 * t + 2 * x + y) % 256).astype(np.uint8)  # (T, H, W, 3)
        if r.mode == "extend":  # the given video is kept whole, as the pipeline does
            out = np.concatenate([given["video"], out] if r.direction == "forward" else [out, given["video"]])
        elif r.mode == "connect":
            out = np.concatenate([given["video_a"], out, given["video_b"]])
        write_video(path, out, r.fps)
        return len(out)


if __name__ == "__main__":
    import sys

    from tenku.serve.cli import main

    sys.exit(main(make_pipeline=lambda args: FakePipeline()))
