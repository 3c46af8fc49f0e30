"""Chance rows: the same metrics, by the same code, on the same prompts, for videos that know nothing (noise),
know the scene but not time (the first ground-truth frame frozen), or know the video but not the prompt
(ground truth scored against another clip's caption) or not left from right (ground truth mirrored). A metric
is only worth reading where the model's score stands clear of every row here.

Rows (each metric near its chance level, ground truth near 1 or 0):
    uniform noise      no objects: every attribute 0, no_object 1
    blocky noise       8x8-pixel blocks of random colour: no coherent object either
    frozen frame 0     objects of the right look that never move: direction ~0 (still is wrong for moving scenes)
    shuffled captions  the attributes of another clip: ~1/number of values for each
    mirrored           left and right swapped: left/right confusion ~1, the rest intact
"""

from __future__ import annotations

import numpy as np

ROWS = ("uniform noise", "blocky noise", "frozen frame 0", "shuffled captions", "mirrored")
BLOCK = 8  # pixels per side of a blocky-noise block


def baseline(name: str, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A chance video shaped like ground-truth `frames` (T, H, W, 3) uint8 ("shuffled captions" keeps them)."""
    T, H, W, _ = frames.shape
    if name == "uniform noise":
        return rng.integers(0, 256, frames.shape, dtype=np.uint8)
    if name == "blocky noise":
        small = rng.integers(0, 256, (T, -(-H // BLOCK), -(-W // BLOCK), 3), dtype=np.uint8)
        return small.repeat(BLOCK, 1).repeat(BLOCK, 2)[:, :H, :W]
    if name == "frozen frame 0":
        return np.repeat(frames[:1], T, axis=0)
    if name == "mirrored":
        return np.ascontiguousarray(frames[:, :, ::-1])
    if name == "shuffled captions":
        return frames
    raise ValueError(f"unknown chance row {name!r}; choose from {ROWS}")


def chance_rows(truth: list[tuple[np.ndarray, float, object]], seed: int = 0) -> dict[str, list[dict]]:
    """Per chance row, the per-clip metrics. truth: (frames, fps, spec) of each ground-truth clip; the shuffled
    row scores clip i against the spec of clip perm(i), a permutation without fixed points where it can."""
    from .metrics import score_clip

    rng = np.random.default_rng(seed)
    n = len(truth)
    perm = np.roll(np.arange(n), 1) if n > 1 else np.arange(n)  # a derangement: no clip keeps its caption
    perm = perm[rng.permutation(n)] if n > 2 else perm
    perm = np.array([p if p != i else (i + 1) % n for i, p in enumerate(perm)]) if n > 1 else perm
    out = {}
    for name in ROWS:
        clips = []
        for i, (frames, fps, spec) in enumerate(truth):
            s = truth[int(perm[i])][2] if name == "shuffled captions" else spec
            clips.append({"metrics": score_clip(baseline(name, frames, rng), fps, s)[0]})
        out[name] = clips
    return out
