"""Chance rows: the same metrics, by the same code, on the same prompts, for videos that know nothing (noise),
know the scene but not time (the first ground-truth frame frozen), or know the video but not the prompt
(ground truth scored against another clip's caption) or not left from right (ground truth mirrored). A metric
is only worth reading where the model's score stands clear of every row here.

Rows (each metric near its chance level, ground truth near 1 or 0):
    uniform noise      no objects: every attribute 0, no_object 1
    blocky noise       8x8-pixel blocks of random colour: no coherent object either
    frozen frame 0     objects of the right look that never move: direction ~0 (still is wrong for moving scenes)
    shuffled captions  the attributes of another clip: ~1/number of values for each (exactly: shuffled_expected)
    mirrored           left and right swapped: left/right confusion ~1, the rest intact
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from tenku.worldbench.colors import horizontal_sign

NAN = float("nan")
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


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(n) without fixed points (for n > 1): no clip keeps its own caption."""
    perm = np.roll(np.arange(n), 1) if n > 1 else np.arange(n)
    perm = perm[rng.permutation(n)] if n > 2 else perm
    return np.array([p if p != i else (i + 1) % n for i, p in enumerate(perm)]) if n > 1 else perm


def chance_rows(truth: list[tuple[np.ndarray, float, object]], seed: int = 0,
                progress: str | None = None) -> dict[str, list[dict]]:
    """Per chance row, the per-clip metrics. truth: (frames, fps, spec) of each ground-truth clip; the shuffled
    row scores clip i against the spec of clip perm(i) (`derangement`). `progress`: a progress bar's label."""
    from tenku.worldbench.metrics import score_clip

    rng = np.random.default_rng(seed)
    perm = derangement(len(truth), rng)
    out = {}
    bar = tqdm(total=len(ROWS) * len(truth), desc=progress, unit="clip", disable=progress is None)
    for name in ROWS:
        clips = []
        for i, (frames, fps, spec) in enumerate(truth):
            s = truth[int(perm[i])][2] if name == "shuffled captions" else spec
            clips.append({"metrics": score_clip(baseline(name, frames, rng), fps, s)[0]})
            bar.update()
        out[name] = clips
    bar.close()
    return out


def shuffled_expected(truth, seed: int = 0) -> dict[str, float]:
    """The chance level of the shuffled row: the attribute scores a perfect detector would give, from the specs
    alone, with the same pairing as chance_rows."""
    specs = [spec for _, _, spec in truth]
    perm = derangement(len(specs), np.random.default_rng(seed))
    rows = [agreement(specs[int(perm[i])], specs[i]) for i in range(len(specs))]
    return {k: _mean([r[k] for r in rows]) for k in (rows[0] if rows else {})}


def agreement(prompt, truth) -> dict[str, float]:
    """Attribute scores of a clip showing `truth` exactly, against `prompt` (both Specs): each prompt object is
    matched to the truth's first object of its colour, as the metrics match tracks."""
    objs = {}
    for o in truth.objects:
        objs.setdefault(o.color, o)
    pairs = [(o, objs.get(o.color)) for o in prompt.objects]
    sides = [(horizontal_sign(o.direction), horizontal_sign(t.direction)) for o, t in pairs if t is not None]
    return {
        "color_accuracy": _mean([t is not None for _, t in pairs]),
        "shape_accuracy": _mean([t is not None and t.shape == o.shape for o, t in pairs if o.shape]),
        "size_accuracy": _mean([t is not None and t.size == o.size for o, t in pairs if o.size]),
        "count_accuracy": float(len(prompt.objects) == len(truth.objects)) if prompt.objects else NAN,
        "direction_accuracy": _mean([t is not None and t.direction == o.direction for o, t in pairs
                                     if o.direction]),
        "left_right_confusion": _mean([want == -got for want, got in sides if want and got]),
    }


def _mean(values) -> float:
    values = [v for v in values if not (isinstance(v, float) and np.isnan(v))]
    return float(np.mean(values)) if values else NAN
