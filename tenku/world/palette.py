"""Tenku World's vocabulary of appearance and motion: colours, backgrounds, occluders, sizes, speeds.

Everything a scene can be made of is listed once: names and RGB values in `tenku.vocab` (shared with
WorldBench, which must not import the world), the world's own rules here (exclusions, distances, OOD ranges).
RGB values are saturated and far apart (`MIN_OBJECT_DISTANCE`) so a colour-threshold detector can name an
object's colour exactly even after H.264 compression.
"""

from __future__ import annotations

import numpy as np

# Names and RGB values shared with WorldBench live in tenku/vocab.py (re-exported here).
from tenku.vocab import (BACKGROUNDS, COLORS, DIRECTION_VECTORS, DIRECTIONS, GRAVITY, MOTIONS, OCCLUDERS,  # noqa: F401
                     SHAPES, SIZES, SPEEDS)

MIN_OBJECT_DISTANCE = 90.0

# BACKGROUND_EXCLUDES names object colours that never appear on that background (too close in hue or brightness
# for a viewer or a detector).
BACKGROUND_EXCLUDES: dict[str, frozenset[str]] = {
    "black": frozenset(),
    "grey": frozenset({"white"}),
    "dark blue": frozenset({"blue", "purple"}),
    "dark green": frozenset({"green"}),
}
# A texture alternates the background colour with a slightly brighter shade (still far from every object).
MIN_BACKGROUND_DISTANCE = 110.0  # every allowed object colour is at least this far from its background
TEXTURE_KINDS = ("checker", "stripes")
TEXTURE_SHADE = 30

# Each scene uses an occluder bar whose colour is >= MIN_OCCLUDER_DISTANCE from every object and the background
# in it.
MIN_OCCLUDER_DISTANCE = 90.0

# `ood` draws radii from SIZES_OOD, outside every training range (SIZES), and keeps the nearest label (a radius
# below the small range is still called "small").
SIZES_OOD: dict[str, tuple[float, float]] = {"small": (0.25, 0.4), "large": (1.7, 2.1)}
# Speeds (SPEEDS, world units per second), same idea.
SPEEDS_OOD: dict[str, tuple[float, float]] = {"slow": (0.3, 0.7), "fast": (5.0, 7.0)}

RESTITUTION = 0.8  # floor bounces keep this fraction of the vertical speed

# Held-out (colour, shape, motion) triples: `train`, `id`, `ood` and `paraphrase` never produce them and every
# `combo` scene contains one. Chosen so each colour, shape and motion still appears in training otherwise.
COMBO_HOLDOUT: frozenset[tuple[str, str, str]] = frozenset({
    ("red", "triangle", "uniform"),
    ("green", "ball", "bounce"),
    ("blue", "square", "fall"),
    ("yellow", "ball", "collide"),
    ("orange", "triangle", "occlude"),
    ("purple", "square", "pan"),
    ("white", "ball", "uniform"),
    ("cyan", "triangle", "bounce"),
    ("orange", "square", "still"),
    ("purple", "ball", "fall"),
    ("cyan", "ball", "collide"),
    ("green", "square", "occlude"),
})


def rgb_distance(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, float) - np.asarray(b, float)))


def nearest_color(rgb) -> str:
    """The object colour name closest to an RGB triple (what a colour-threshold detector reports)."""
    return min(COLORS, key=lambda name: rgb_distance(COLORS[name], rgb))


def shape_extents(shape: str, radius: float) -> tuple[float, float, float, float]:
    """Distances from an object's centre to its (left, right, bottom, top) edges, for wall contacts.

    A triangle points up with its centroid at the centre, so its base sits radius/2 below the centre.
    """
    if shape in ("ball", "square"):
        return (radius, radius, radius, radius)
    if shape == "triangle":
        half_side = radius * 3**0.5 / 2
        return (half_side, half_side, radius / 2, radius)
    raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")


def check_name(kind: str, name: str, valid) -> None:
    if name not in valid:
        raise ValueError(f"unknown {kind} {name!r}; choose from {sorted(valid)}")
