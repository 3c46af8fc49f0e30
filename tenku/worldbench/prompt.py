"""A small rule-based caption parser: caption -> Spec (objects with colour, shape, size, direction, speed; the
motion). It reads the vocabulary Tenku World's captions are written from (`tenku.vocab`), training and held-out
wordings alike, so every synonym the world writes ("crimson", "wedge", "leftward", "towards the upper right")
is understood.

Phrases are matched on word sequences, longest first, and consumed, so "dark blue background" never yields a
blue object and "up and to the left" is one direction, not "up" plus "left".
"""

from __future__ import annotations

import re

from .. import vocab as W
from .colors import GRAVITY
from .spec import ObjectSpec, Spec


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


def parse_prompt(text: str) -> Spec:
    """Parse a caption. Unknown words are skipped; anything not stated stays None."""
    tokens = _tokens(text)
    used = [False] * len(tokens)

    def take(i, n):
        for j in range(i, i + n):
            used[j] = True

    # 1. Background ("on a navy backdrop") and occluder ("a silver pillar") phrases, consumed first.
    background = occluder = None
    for i in range(len(tokens)):
        m = _match(tokens, i, BACKGROUNDS)
        if m and not any(used[i:i + m[0]]) and i + m[0] < len(tokens) and tokens[i + m[0]] in BACKDROP:
            background = m[1]
            behind = i + m[0] + 1 < len(tokens) and tokens[i + m[0] + 1] == "behind"  # "backdrop behind"
            take(i, m[0] + 1 + behind)
        m = _match(tokens, i, OCCLUDERS)
        if m and not any(used[i:i + m[0]]) and _match(tokens, i + m[0], BARS):
            occluder = m[1]
            take(i, m[0] + _match(tokens, i + m[0], BARS)[0])

    # 2. Objects: [size] colour shape (the shape within the next two words).
    objects: list[ObjectSpec] = []
    starts: list[int] = []
    i = 0
    while i < len(tokens):
        m = None if used[i] else _match(tokens, i, COLORS)
        if not m:
            i += 1
            continue
        obj = ObjectSpec(color=m[1])
        j = i + m[0]
        for k in range(j, min(j + 3, len(tokens))):
            s = _match(tokens, k, SHAPES)
            if s:
                obj.shape = s[1]
                j = k + s[0]
                break
        for k in range(max(0, i - 3), i):  # a size phrase that ends right before the colour
            z = _match(tokens, k, SIZES)
            if z and k + z[0] == i and not any(used[k:i]):
                obj.size = z[1]
                take(k, z[0])
                break
        take(i, j - i)
        objects.append(obj)
        starts.append(i)
        i = j

    # 3. Directions (and still phrases), each assigned to the nearest object named before it; speeds.
    def owner(pos: int) -> int | None:
        before = [n for n, s in enumerate(starts) if s < pos]
        return before[-1] if before else (0 if objects else None)

    directions, speeds = [], []
    i = 0
    while i < len(tokens):
        if used[i]:
            i += 1
            continue
        for table, out in ((DIRECTIONS, directions), (SPEEDS, speeds)):
            m = _match(tokens, i, table)
            if m:
                out.append((owner(i), m[1]))
                take(i, m[0])
                i += m[0] - 1
                break
        else:
            for words in STILL:
                if tuple(tokens[i:i + len(words)]) == words:
                    directions.append((owner(i), "still"))
                    take(i, len(words))
                    break
        i += 1

    # 4. Motion from keywords; one stated direction covers every object except in collisions.
    words = {t for t, u in zip(tokens, used) if not u}  # not words inside background/object phrases
    motion = next((name for name, keys in MOTION_WORDS if words & keys), None)
    if motion is None:
        stated = {d for _, d in directions}
        motion = "still" if stated == {"still"} else "uniform" if stated else None
    for who, value in directions:
        if who is not None and objects[who].direction is None:
            objects[who].direction = value
    if motion != "collide" and directions:  # one direction for the whole group
        for o in objects:
            o.direction = o.direction or directions[0][1]
    if speeds and objects:  # captions state the speed of the first-named object only
        objects[0].speed = speeds[0][1]
    if motion == "collide":  # a ball with no stated motion in a collision waits at rest
        for o in objects:
            o.direction = o.direction or "still"
    if motion == "fall":
        for o in objects:
            o.direction = o.direction or "down"
    return Spec(motion=motion, objects=objects, background=background, occluder=occluder,
                gravity=GRAVITY if motion == "fall" else None, source="prompt")

