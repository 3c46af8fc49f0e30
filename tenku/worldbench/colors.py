"""WorldBench's vocabulary, read from the neutral `tenku.vocab` that the world also draws from (one source of
truth for names and RGB values, without importing the world): object and occluder colours, shapes, size and
speed labels, directions and gravity. The rule that names a velocity's direction is `tenku.vocab.direction_of`,
whose default "still" threshold is WorldBench's STILL_SPEED."""

from __future__ import annotations

from tenku import vocab

OBJECT_COLORS: dict[str, tuple[int, int, int]] = dict(vocab.COLORS)
OCCLUDER_COLORS: dict[str, tuple[int, int, int]] = dict(vocab.OCCLUDERS)
BACKGROUND_COLORS: dict[str, tuple[int, int, int]] = dict(vocab.BACKGROUNDS)
SHAPES: tuple[str, ...] = tuple(vocab.SHAPES)
DIRECTIONS: tuple[str, ...] = ("still",) + tuple(vocab.DIRECTIONS)
DIRECTION_VECTORS = dict(vocab.DIRECTION_VECTORS)
SIZES = dict(vocab.SIZES)
SPEEDS = dict(vocab.SPEEDS)
GRAVITY = vocab.GRAVITY
STILL_SPEED = vocab.STILL_SPEED  # world units / s: slower than this reads as "still"


def _nearest_label(value: float, table: dict) -> str:
    """The label whose [lo, hi] range is nearest to value (0 inside it). Out-of-range values keep the nearest
    name, as the world's OOD split does."""
    return min(table, key=lambda k: max(table[k][0] - value, 0.0, value - table[k][1]))


def size_label(radius: float) -> str:
    return _nearest_label(radius, SIZES)


def speed_label(speed: float) -> str:
    return _nearest_label(speed, SPEEDS)


def speed_value(label: str) -> float:
    """A typical speed for a label (the middle of its training range), for prompts that give only the word."""
    lo, hi = SPEEDS[label]
    return (lo + hi) / 2


def horizontal_sign(direction: str | None) -> int:
    """+1 for a rightward direction, -1 for leftward, 0 otherwise."""
    if not direction:
        return 0
    return 1 if "right" in direction else -1 if "left" in direction else 0
