"""Tenku World's vocabulary of appearance and motion: colours, backgrounds, occluders, sizes, speeds.

Everything a scene can be made of is listed here, once, so that the sampler, the captions and WorldBench's
colour detectors agree. RGB values are saturated and far apart (`MIN_OBJECT_DISTANCE`) so a colour-threshold
detector can name an object's colour exactly even after H.264 compression.
"""

from __future__ import annotations

import numpy as np

# Object colours. Pairwise Euclidean RGB distance >= MIN_OBJECT_DISTANCE (checked in tests).
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (40, 190, 60),
    "blue": (40, 90, 235),
    "yellow": (245, 235, 50),
    "orange": (250, 135, 20),
    "purple": (150, 55, 215),
    "white": (245, 245, 245),
    "cyan": (40, 215, 225),
}
MIN_OBJECT_DISTANCE = 90.0

# Plain backgrounds, dark so every object colour stands out. EXCLUDES names object colours that never appear
# on that background (too close in hue or brightness for a viewer or a detector).
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "grey": (85, 85, 85),
    "dark blue": (15, 20, 70),
    "dark green": (15, 55, 25),
}
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

# Occluder bars. Each scene uses one whose colour is >= MIN_OCCLUDER_DISTANCE from every object and the
# background in it.
OCCLUDERS: dict[str, tuple[int, int, int]] = {
    "silver": (175, 175, 175),
    "brown": (140, 85, 40),
    "pink": (250, 125, 200),
}
MIN_OCCLUDER_DISTANCE = 90.0

SHAPES = ("ball", "square", "triangle")
MOTIONS = ("still", "uniform", "bounce", "fall", "collide", "occlude", "pan")
DIRECTIONS = ("right", "left", "up", "down", "up-right", "up-left", "down-right", "down-left")
# Unit vectors in view coordinates (x right, y up).
DIRECTION_VECTORS: dict[str, tuple[float, float]] = {
    "right": (1.0, 0.0), "left": (-1.0, 0.0), "up": (0.0, 1.0), "down": (0.0, -1.0),
    "up-right": (0.5**0.5, 0.5**0.5), "up-left": (-(0.5**0.5), 0.5**0.5),
    "down-right": (0.5**0.5, -(0.5**0.5)), "down-left": (-(0.5**0.5), -(0.5**0.5)),
}

# Radius (half-extent) ranges in world units. `ood` draws from SIZES_OOD, outside every training range, and
# keeps the nearest label (a radius below the small range is still called "small").
SIZES: dict[str, tuple[float, float]] = {"small": (0.5, 0.7), "medium": (0.85, 1.05), "large": (1.2, 1.5)}
SIZES_OOD: dict[str, tuple[float, float]] = {"small": (0.25, 0.4), "large": (1.7, 2.1)}
# Speeds in world units per second, same idea.
SPEEDS: dict[str, tuple[float, float]] = {"slow": (1.0, 2.0), "fast": (2.5, 4.0)}
SPEEDS_OOD: dict[str, tuple[float, float]] = {"slow": (0.3, 0.7), "fast": (5.0, 7.0)}

GRAVITY = 9.8  # world units / s^2
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
