"""Ground truth for WorldBench: the one module that imports Tenku World. It makes a split's clips for
`worldbench run` and renders the scenes behind the detector floor and the chance rows; every detector and metric
reads pixels and `tenku.vocab` only (tests/test_worldbench_truth.py checks that no other module imports the world).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tenku.world.render import render
from tenku.world.sample import MIXES, SPLITS, sample_scene
from tenku.world.scene import Scene
from tenku.worldbench.spec import spec_from_scene

__all__ = ["MIXES", "SPLITS", "make_split", "render_truth"]


def make_split(out_dir, split: str, count: int, seed: int, height: int, width: int, frames: int, fps: float,
               mix: str = "full", progress: bool = True) -> Path:
    """Write `count` ground-truth clips of a world split (and their manifest) under out_dir; return the manifest."""
    from tenku.world.make import make_dataset  # loads torch (through video_io): only when a split is made

    return make_dataset(out_dir, count, split, seed, sizes=((height, width),), frames=(frames,), fps=fps,
                        workers=1, progress=progress, mix=mix)


def write_like_world(path, frames, fps: float) -> None:
    """Write a video as `tenku world make` writes its clips (full-resolution colour), so the floor applies."""
    from tenku.data.video_io import write_video
    from tenku.world.make import PIX_FMT

    write_video(path, frames, fps, pix_fmt=PIX_FMT)


def render_truth(entries, count: int = 8) -> list[tuple]:
    """(frames, fps, Spec) of ground-truth clips rendered from the first `count` manifest scenes after the H.264
    round trip the world's files take, or from `id` scenes when the manifest has none."""
    from tenku.data.video_io import read_video

    scenes = [Scene.from_dict(e["scene"], e.get("fps"), e.get("height"), e.get("width"))
              for e in entries if e.get("scene")][:count]
    if not scenes:
        scenes = [sample_scene("id", i) for i in range(count)]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, s in enumerate(scenes):
            path = Path(tmp) / f"{i}.mp4"
            write_like_world(path, render(s), s.fps)
            out.append((read_video(path)[0], s.fps, spec_from_scene(s.to_dict(), s.fps)))
    return out
