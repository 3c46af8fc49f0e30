"""The shared vocabulary of Tenku World: the names of what a scene can hold, their RGB values and ranges, and
the words captions use for them, and the two conventions both sides measure scenes by: a frame's size in world
units (`world_size`) and the direction a velocity is named by (`direction_of`).

It is neutral ground: the world draws and captions scenes with it (`world.palette`, `world.captions`), and
WorldBench reads pixels and prompts with it, without either importing the other. An evaluator that imported
the renderer's code would measure agreement with the renderer, not recognition from pixels.
"""

from __future__ import annotations

import math

# --- appearance ------------------------------------------------------------------------------------------

# Object colours. Pairwise Euclidean RGB distance >= world.palette.MIN_OBJECT_DISTANCE (checked in tests).
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
# Plain backgrounds, dark so every object colour stands out.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "grey": (85, 85, 85),
    "dark blue": (15, 20, 70),
    "dark green": (15, 55, 25),
}
# Occluder bars: never the colour of an object.
OCCLUDERS: dict[str, tuple[int, int, int]] = {
    "silver": (175, 175, 175),
    "brown": (140, 85, 40),
    "pink": (250, 125, 200),
}
# A square is axis-aligned; a triangle is equilateral and points up.
SHAPES = ("ball", "square", "triangle")

# --- motion ----------------------------------------------------------------------------------------------

MOTIONS = ("still", "uniform", "bounce", "fall", "collide", "occlude", "pan")
DIRECTIONS = ("right", "left", "up", "down", "up-right", "up-left", "down-right", "down-left")
# Unit vectors in view coordinates (x right, y up).
DIRECTION_VECTORS: dict[str, tuple[float, float]] = {
    "right": (1.0, 0.0), "left": (-1.0, 0.0), "up": (0.0, 1.0), "down": (0.0, -1.0),
    "up-right": (0.5**0.5, 0.5**0.5), "up-left": (-(0.5**0.5), 0.5**0.5),
    "down-right": (0.5**0.5, -(0.5**0.5)), "down-left": (-(0.5**0.5), -(0.5**0.5)),
}
# Radius (half-extent) ranges in world units, and speeds in world units per second, of the training splits.
SIZES: dict[str, tuple[float, float]] = {"small": (0.5, 0.7), "medium": (0.85, 1.05), "large": (1.2, 1.5)}
SPEEDS: dict[str, tuple[float, float]] = {"slow": (1.0, 2.0), "fast": (2.5, 4.0)}
GRAVITY = 9.8  # world units / s^2
# "Still" thresholds of `direction_of`, in world units / s. WorldBench reads a detected velocity below
# STILL_SPEED as still (at most; over a long baseline it lowers it, see worldbench.metrics): slower detections are
# centroid noise, and the slowest training motion is 1.0. The world captions an object as still only when it
# does not move at all (AT_REST): its velocities are exact, and `ood` objects move from 0.3.
STILL_SPEED = 0.4
AT_REST = 1e-9


def world_size(height: int, width: int) -> tuple[float, float]:
    """(world_w, world_h) of a frame: the shorter side is 10 units, the longer scales with the aspect ratio."""
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    if width >= height:
        return 10.0 * width / height, 10.0
    return 10.0, 10.0 * height / width


def direction_of(vx: float, vy: float, still: float = STILL_SPEED) -> str:
    """The nearest of the 8 viewer-side directions of a velocity (x right, y up), or "still" below `still`."""
    if math.hypot(vx, vy) < still:
        return "still"
    sector = round(math.degrees(math.atan2(vy, vx)) / 45.0) % 8
    return ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")[sector]


# --- words: name -> (train words, held-out words) ----------------------------------------------------------
# Captions use the train words in every split but `paraphrase`, which uses only the held-out ones.

COLOR_WORDS = {
    "red": (["red", "crimson", "scarlet"], ["ruby", "cherry-red"]),
    "green": (["green", "lime", "grass-green"], ["emerald", "jade"]),
    "blue": (["blue", "azure", "royal blue"], ["cobalt", "sapphire"]),
    "yellow": (["yellow", "golden", "lemon"], ["canary", "sunflower"]),
    "orange": (["orange", "tangerine", "amber"], ["apricot", "pumpkin-orange"]),
    "purple": (["purple", "violet", "lilac"], ["plum", "amethyst"]),
    "white": (["white", "snow-white", "ivory"], ["pearly", "chalk-white"]),
    "cyan": (["cyan", "turquoise", "aqua"], ["teal", "sky-cyan"]),
}
SHAPE_WORDS = {
    "ball": (["ball", "sphere", "circle", "disc"], ["orb", "round token"]),
    "square": (["square", "box", "block", "cube"], ["tile", "brick"]),
    "triangle": (["triangle", "wedge", "triangular block"], ["pyramid", "arrowhead"]),
}
SIZE_WORDS = {
    "small": (["small", "little", "tiny"], ["petite", "miniature"]),
    "medium": (["medium", "medium-sized", "mid-sized"], ["average-sized", "moderate"]),
    "large": (["large", "big", "huge"], ["hefty", "giant"]),
}
SPEED_WORDS = {
    "slow": (["slowly", "gently", "at a slow pace"], ["unhurriedly", "lazily"]),
    "fast": (["quickly", "fast", "rapidly", "at high speed"], ["swiftly", "briskly"]),
}
BACKGROUND_WORDS = {
    "black": (["black", "jet-black", "dark"], ["inky", "coal-black"]),
    "grey": (["grey", "gray", "slate"], ["ash-grey", "pewter"]),
    "dark blue": (["dark blue", "navy", "midnight blue"], ["deep indigo", "nightsky-blue"]),
    "dark green": (["dark green", "forest green", "deep green"], ["bottle-green", "pine-green"]),
}
OCCLUDER_WORDS = {"silver": (["silver", "light grey"], ["metallic"]), "brown": (["brown"], ["chocolate"]),
                  "pink": (["pink"], ["rose"])}
BAR_WORDS = (["bar", "pillar", "wall", "post"], ["column", "barrier"])
# Direction phrases from the viewer's side. No phrase of one side contains a word of the other.
DIRECTION_WORDS = {
    "right": (["to the right", "rightward", "towards the right edge"],
              ["over to the right-hand side", "in the direction of the right border"]),
    "left": (["to the left", "leftward", "towards the left edge"],
             ["over to the left-hand side", "in the direction of the left border"]),
    "up": (["up", "upward", "towards the top"], ["skyward", "in the direction of the top border"]),
    "down": (["down", "downward", "towards the bottom"], ["floorward", "in the direction of the bottom border"]),
}
for _v in ("up", "down"):
    for _h in ("right", "left"):
        DIRECTION_WORDS[f"{_v}-{_h}"] = (
            [f"{_v} and to the {_h}", f"diagonally {_v} and {_h}",
             f"towards the {'upper' if _v == 'up' else 'lower'} {_h}"],
            [f"toward the {'top' if _v == 'up' else 'bottom'}-{_h} corner", f"on a slant {_v} and {_h}"])
# (singular, plural) phrases for objects that do not move.
STILL_PHRASES = ([("stays still", "stay still"), ("sits still", "sit still"), ("rests in place", "rest in place"),
                  ("does not move", "do not move"), ("remains motionless", "remain motionless")],
                 [("stays put", "stay put"), ("holds its position", "hold their positions")])
