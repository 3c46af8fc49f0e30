"""A small rule-based caption parser: caption -> Spec (objects with colour, shape, size, direction, speed; the
motion). It reads the vocabulary Tenku World's captions are written from (`tenku.vocab`), training and held-out
wordings alike, so every synonym the world writes ("crimson", "wedge", "leftward", "towards the upper right")
is understood.

Phrases are matched on word sequences, longest first, and consumed, so "dark blue background" never yields a
blue object and "up and to the left" is one direction, not "up" plus "left".
"""

from __future__ import annotations

import re

from tenku import vocab as W
from tenku.worldbench.colors import GRAVITY
from tenku.worldbench.spec import ObjectSpec, Spec


def _table(words: dict) -> list[tuple[tuple[str, ...], str]]:
    """{name: (train words, held words)} -> [(word tuple, name)], longest phrase first."""
    rows = [(tuple(_tokens(p)), name) for name, (a, b) in words.items() for p in a + b]
    return sorted(rows, key=lambda r: -len(r[0]))


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:-[a-z]+)*", text.lower())


COLORS = _table(W.COLOR_WORDS)
SHAPES = _table(W.SHAPE_WORDS)
SIZES = _table(W.SIZE_WORDS)
SPEEDS = _table(W.SPEED_WORDS)
DIRECTIONS = _table(W.DIRECTION_WORDS)
BACKGROUNDS = _table(W.BACKGROUND_WORDS)
OCCLUDERS = _table(W.OCCLUDER_WORDS)
BARS = [(tuple(_tokens(p)), "bar") for p in W.BAR_WORDS[0] + W.BAR_WORDS[1]]
STILL = [tuple(_tokens(p)) for pair in W.STILL_PHRASES[0] + W.STILL_PHRASES[1] for p in pair]
STILL += [("still", "scene"), ("nothing", "happens"), ("frozen", "frame"), ("at", "rest"),
          ("waiting", "motionless"), ("motionless",)]
BACKDROP = ("background", "backdrop")

# Motion keywords, checked in this order (fall captions also mention bouncing, pan captions mention moving).
MOTION_WORDS = [
    ("pan", {"camera", "pans", "viewpoint", "pan"}),
    ("collide", {"collide", "collides", "bump", "crash", "impact", "collision"}),
    ("occlude", {"behind", "hidden", "vanishing", "reappears", "occluded"}),
    ("fall", {"falls", "drops", "thrown", "tumbles", "plunges", "falling", "fall"}),
    ("bounce", {"bounces", "ricochets", "rebounds", "bouncing", "bounce"}),
]


def _match(tokens: list[str], i: int, table) -> tuple[int, str] | None:
    for words, name in table:
        if tuple(tokens[i:i + len(words)]) == words:
            return len(words), name
    return None


class _Words:
    """A caption's tokens and which of them a phrase has consumed."""

    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.used = [False] * len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def match(self, i: int, table) -> tuple[int, str] | None:
        return _match(self.tokens, i, table)

    def free(self, i: int, n: int = 1) -> bool:
        return not any(self.used[i:i + n])

    def take(self, i: int, n: int) -> None:
        for j in range(i, i + n):
            self.used[j] = True


def _scenery(w: _Words) -> tuple[str | None, str | None]:
    """Background ("on a navy backdrop") and occluder ("a silver pillar") phrases, consumed first."""
    background = occluder = None
    for i in range(len(w)):
        m = w.match(i, BACKGROUNDS)
        if m and w.free(i, m[0]) and i + m[0] < len(w) and w.tokens[i + m[0]] in BACKDROP:
            background = m[1]
            behind = i + m[0] + 1 < len(w) and w.tokens[i + m[0] + 1] == "behind"  # "backdrop behind"
            w.take(i, m[0] + 1 + behind)
        m = w.match(i, OCCLUDERS)
        if m and w.free(i, m[0]) and w.match(i + m[0], BARS):
            occluder = m[1]
            w.take(i, m[0] + w.match(i + m[0], BARS)[0])
    return background, occluder


def _objects(w: _Words) -> tuple[list[ObjectSpec], list[int]]:
    """Objects as [size] colour shape (the shape within the next two words), and where each starts."""
    objects, starts, i = [], [], 0
    while i < len(w):
        m = w.match(i, COLORS) if w.free(i) else None
        if not m:
            i += 1
            continue
        obj, j = ObjectSpec(color=m[1]), i + m[0]
        for k in range(j, min(j + 3, len(w))):
            s = w.match(k, SHAPES)
            if s:
                obj.shape, j = s[1], k + s[0]
                break
        for k in range(max(0, i - 3), i):  # a size phrase that ends right before the colour
            z = w.match(k, SIZES)
            if z and k + z[0] == i and w.free(k, i - k):
                obj.size = z[1]
                w.take(k, z[0])
                break
        w.take(i, j - i)
        objects.append(obj)
        starts.append(i)
        i = j
    return objects, starts


def _directions_and_speeds(w: _Words, starts: list[int], any_object: bool) -> tuple[list, list]:
    """Directions (and still phrases) and speeds, each as (index of the nearest object named before it, value)."""
    def owner(pos: int) -> int | None:
        before = [n for n, s in enumerate(starts) if s < pos]
        return before[-1] if before else (0 if any_object else None)

    directions, speeds, i = [], [], 0
    while i < len(w):
        if not w.free(i):
            i += 1
            continue
        for table, out in ((DIRECTIONS, directions), (SPEEDS, speeds)):
            m = w.match(i, table)
            if m:
                out.append((owner(i), m[1]))
                w.take(i, m[0])
                i += m[0] - 1
                break
        else:
            for words in STILL:
                if tuple(w.tokens[i:i + len(words)]) == words:
                    directions.append((owner(i), "still"))
                    w.take(i, len(words))
                    break
        i += 1
    return directions, speeds


def _motion(w: _Words, directions: list) -> str | None:
    """The motion from keywords outside background and object phrases; else from the stated directions."""
    words = {t for t, u in zip(w.tokens, w.used) if not u}
    motion = next((name for name, keys in MOTION_WORDS if words & keys), None)
    if motion is None:
        stated = {d for _, d in directions}
        motion = "still" if stated == {"still"} else "uniform" if stated else None
    return motion


def _assign(objects: list[ObjectSpec], motion: str | None, directions: list, speeds: list) -> None:
    """Give each object its direction and speed; one stated direction covers every object except in collisions."""
    for who, value in directions:
        if who is not None and objects[who].direction is None:
            objects[who].direction = value
    if motion != "collide" and directions:  # one direction for the whole group
        for o in objects:
            o.direction = o.direction or directions[0][1]
    if speeds and objects:  # captions state the speed of the first-named object only
        objects[0].speed = speeds[0][1]
    if motion in ("collide", "fall"):  # a ball with no stated motion waits at rest in a collision, falls in a fall
        for o in objects:
            o.direction = o.direction or ("still" if motion == "collide" else "down")


def parse_prompt(text: str) -> Spec:
    """Parse a caption. Unknown words are skipped; anything not stated stays None."""
    w = _Words(text)
    background, occluder = _scenery(w)
    objects, starts = _objects(w)
    directions, speeds = _directions_and_speeds(w, starts, bool(objects))
    motion = _motion(w, directions)
    _assign(objects, motion, directions, speeds)
    return Spec(motion=motion, objects=objects, background=background, occluder=occluder,
                gravity=GRAVITY if motion == "fall" else None, source="prompt")
