"""Random scenes for each split. A scene is a deterministic function of (split, seed, size, frames, fps).

    train       the training distribution
    id          the same distribution from a disjoint random stream (held-out scenes)
    ood         speeds and radii outside every training range (labels keep the nearest name)
    combo       every scene contains a (colour, shape, motion) triple from palette.COMBO_HOLDOUT, which no
                other split ever produces
    paraphrase  exactly the `id` scenes (same seed, same pixels); only the caption wording differs
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tenku.vocab import world_size
from tenku.world import palette
from tenku.world.scene import Background, Occluder, Scene, WorldObject, build_scene

SPLITS = ("train", "id", "ood", "combo", "paraphrase")
_STREAM = {"train": 0, "id": 1, "ood": 2, "combo": 3, "paraphrase": 1}  # paraphrase reuses the id stream
MOTION_WEIGHTS = {"still": 0.08, "uniform": 0.24, "bounce": 0.14, "fall": 0.14, "collide": 0.14,
                  "occlude": 0.13, "pan": 0.13}
OBJECT_COUNTS = {"still": (1, 3), "uniform": (1, 3), "pan": (1, 3), "bounce": (1, 1), "fall": (1, 1),
                 "occlude": (1, 1), "collide": (2, 2)}
TEXTURE_PROB = 0.2  # pan scenes always have a texture, so the camera motion is visible
GAP = 0.3  # world units kept free between objects
# A bouncing object first flies this long in its drawn direction before any wall turns it, so the direction its
# caption names is the one a viewer sees (a start touching the wall it heads for would look like the opposite).
MIN_FREE_FLIGHT = 0.375  # seconds (3 frames at 8 fps)


@dataclass(frozen=True)
class Mix:
    """Which scenes a data set draws: motion weights, at most this many objects, how often a texture."""

    motions: dict
    max_objects: int = 3
    texture_prob: float = TEXTURE_PROB


# Named scene mixes. "full" is the world; the others are simpler worlds for curricula and fast probes (a
# design is tried on "uniform" in minutes before the full world costs hours). Every split exists in each.
MIXES = {
    "full": Mix(MOTION_WEIGHTS),
    "simple": Mix({"uniform": 0.5, "bounce": 0.25, "fall": 0.25}, max_objects=1, texture_prob=0.0),
    "uniform": Mix({"uniform": 1.0}, max_objects=1, texture_prob=0.0),
}


def sample_scene(split: str, seed: int, height: int = 64, width: int = 64, frames: int = 17,
                 fps: float = 8.0, mix: str = "full") -> Scene:
    """A random scene of `split` drawn from the scene mix `mix` (MIXES). The same arguments always give the
    same scene (and pixels)."""
    palette.check_name("split", split, SPLITS)
    palette.check_name("mix", mix, tuple(MIXES))
    m = MIXES[mix]
    rng = np.random.default_rng([_STREAM[split], int(seed)])
    world_w, world_h = world_size(height, width)
    duration = max((frames - 1) / fps, 1.0)  # layouts plan for at least 1 s so 1-frame clips look the same
    ood = split == "ood"

    # 1. What: motion, then colours and shapes (respecting the held-out combos), then the background.
    motions = list(m.motions)
    motion = motions[rng.choice(len(motions), p=list(m.motions.values()))]
    lo, hi = OBJECT_COUNTS[motion]
    lo, hi = min(lo, m.max_objects), min(hi, m.max_objects)
    looks = _appearance(rng, motion, int(rng.integers(lo, hi + 1)), combo=split == "combo")
    colors = [c for c, _ in looks]
    bgs = [b for b in palette.BACKGROUNDS if not palette.BACKGROUND_EXCLUDES[b] & set(colors)]
    background = Background(bgs[rng.integers(len(bgs))])
    if motion == "pan" or rng.random() < m.texture_prob:
        shade = np.clip(np.asarray(background.rgb) + palette.TEXTURE_SHADE, 0, 255)
        background.texture = {"kind": palette.TEXTURE_KINDS[rng.integers(2)],
                              "cell": float(rng.choice([2.0, 2.5, 10 / 3])), "rgb2": [int(c) for c in shade]}

    # 2. How big and how fast.
    objects = []
    for color, shape in looks:
        size, radius = _draw(rng, palette.SIZES_OOD if ood else palette.SIZES)
        objects.append(WorldObject(shape, color, radius, x=0.0, y=0.0, size=size))

    # 3. Where and which way, per motion.
    occluders, camera = [], (0.0, 0.0)
    W, H = world_w, world_h
    speeds = palette.SPEEDS_OOD if ood else palette.SPEEDS
    if motion == "still":
        objects = _place(rng, objects, W, H)
    elif motion == "uniform":
        objects = _lanes(rng, objects, W, H, duration, speeds)
    elif motion == "bounce":
        (o,) = _place(rng, objects, W, H)
        o.speed, v = _draw(rng, speeds)
        o.vx, o.vy = v * np.asarray(palette.DIRECTION_VECTORS[palette.DIRECTIONS[rng.integers(8)]])
        _room_ahead(o, W, H, MIN_FREE_FLIGHT)
    elif motion == "fall":
        _fall(rng, objects[0], W, H, speeds, ood)
    elif motion == "collide":
        _collide(rng, objects, W, H, duration, speeds)
    elif motion == "occlude":
        occluders = [_occlude(rng, objects[0], W, H, duration, speeds, background)]
    elif motion == "pan":
        label, v = _draw(rng, speeds)
        cam = v * np.asarray(palette.DIRECTION_VECTORS[palette.DIRECTIONS[rng.integers(8)]])
        objects = _place(rng, objects, W, H)
        for o in objects:  # static in the world; centred in view half-way through the clip
            o.x, o.y, o.speed = o.x + cam[0] * duration / 2, o.y + cam[1] * duration / 2, label
        camera = (float(cam[0]), float(cam[1]))
    for o in objects:
        o.x, o.y, o.vx, o.vy = (float(v) for v in (o.x, o.y, o.vx, o.vy))
    return build_scene(motion, objects, frames=frames, fps=fps, height=height, width=width,
                       background=background, occluders=occluders, camera=camera)


def _draw(rng, table: dict) -> tuple[str, float]:
    """A (label, value) pair: a random label of the table, a value uniform in its range."""
    label = list(table)[rng.integers(len(table))]
    lo, hi = table[label]
    return label, float(rng.uniform(lo, hi))


def _appearance(rng, motion: str, n: int, combo: bool) -> list[tuple[str, str]]:
    """n (colour, shape) pairs with distinct colours. Only a combo scene contains a held-out triple."""
    shapes = ("ball",) if motion == "collide" else palette.SHAPES
    colors = list(palette.COLORS)
    looks = []
    if combo:
        held = sorted((c, s) for c, s, m in palette.COMBO_HOLDOUT if m == motion and s in shapes)
        looks.append(held[rng.integers(len(held))])
    while len(looks) < n:
        c, s = colors[rng.integers(len(colors))], shapes[rng.integers(len(shapes))]
        if (c, s, motion) not in palette.COMBO_HOLDOUT and c not in {lc for lc, _ in looks}:
            looks.append((c, s))
    if motion != "collide":  # the held-out object should not always be the first one
        looks = [looks[i] for i in rng.permutation(len(looks))]
    return looks


def _inside(o, x, y, W, H) -> bool:
    el, er, eb, et = palette.shape_extents(o.shape, o.radius)
    return el <= x <= W - er and eb <= y <= H - et


def _room_ahead(o, W, H, seconds: float) -> None:
    """Move o back from the walls it heads for, per axis, so it flies `seconds` before touching one (as far as
    the frame allows)."""
    el, er, eb, et = palette.shape_extents(o.shape, o.radius)
    for pos, v, lo, hi in (("x", o.vx, el, W - er), ("y", o.vy, eb, H - et)):
        need = abs(v) * seconds
        p = getattr(o, pos)
        p = min(p, max(lo, hi - need)) if v > 0 else max(p, min(hi, lo + need)) if v < 0 else p
        setattr(o, pos, p)


def _place(rng, objects, W, H, tries: int = 200):
    """Random non-overlapping positions fully inside the frame; objects that do not fit are dropped."""
    placed = []
    for o in objects:
        el, er, eb, et = palette.shape_extents(o.shape, o.radius)
        for _ in range(tries):
            x, y = rng.uniform(el, max(el, W - er)), rng.uniform(eb, max(eb, H - et))
            if all(np.hypot(x - p.x, y - p.y) >= o.radius + p.radius + GAP for p in placed):
                o.x, o.y = x, y
                placed.append(o)
                break
    return placed or objects[:1]


def _lanes(rng, objects, W, H, duration, speeds):
    """Uniform motion: one shared direction, each object in its own lane (so they never overlap), paths
    centred on the frame half-way through the clip."""
    d = np.asarray(palette.DIRECTION_VECTORS[palette.DIRECTIONS[rng.integers(8)]])
    normal = np.array([-d[1], d[0]])
    while len(objects) > 1 and 2 * sum(o.radius for o in objects) + GAP * len(objects) > min(W, H) - 0.5:
        objects = objects[:-1]
    centres = np.cumsum([0.0] + [a.radius + b.radius + GAP for a, b in zip(objects, objects[1:])])
    centres -= centres.mean()
    mid = np.array([W / 2, H / 2]) + rng.uniform(-0.7, 0.7, 2)
    for o, off in zip(objects, centres):
        o.speed, v = _draw(rng, speeds)
        p = mid + normal * off - d * v * duration / 2 + d * rng.uniform(-0.5, 0.5)
        o.x, o.y, (o.vx, o.vy) = p[0], p[1], v * d
    return objects


def _fall(rng, o, W, H, speeds, ood):
    """A horizontal launch (a parabola) or a straight drop, bouncing on the floor."""
    el, er, eb, et = palette.shape_extents(o.shape, o.radius)
    side = ["right", "left"] + ([] if ood else [None])
    side = side[rng.integers(len(side))]
    o.y = rng.uniform(min(0.6 * H, H - et), H - et)
    if side is None:
        o.x, o.speed, o.direction, o.speed_value = rng.uniform(el, W - er), None, "down", 0.0
        return
    o.speed, v = _draw(rng, speeds)
    start = rng.uniform(el, max(el, 0.3 * W))
    o.x, o.vx = (start, v) if side == "right" else (W - start, -v)
    o.direction, o.speed_value = f"down-{side}", v


def _collide(rng, objects, W, H, duration, speeds, tries: int = 30):
    """Two balls that meet at a planned time and point: head-on or glancing, one possibly at rest."""
    a, b = objects
    axis = ["right", "up", "up-right", "up-left"][rng.choice(4, p=[0.6, 0.2, 0.1, 0.1])]
    u = np.asarray(palette.DIRECTION_VECTORS[axis]) * rng.choice([-1, 1])
    angle = np.radians(rng.uniform(-30, 30))  # between the line of motion and the line of centres at contact
    n = np.array([u[0] * np.cos(angle) - u[1] * np.sin(angle), u[0] * np.sin(angle) + u[1] * np.cos(angle)])
    a.speed, va = _draw(rng, speeds)
    b.speed, vb = _draw(rng, speeds) if rng.random() < 0.7 else (None, 0.0)
    vel_a, vel_b = va * u, -vb * u
    t_c = rng.uniform(0.35, 0.65) * duration
    contact = np.array([W / 2, H / 2]) + rng.uniform(-1, 1, 2)
    for k in range(tries):  # shrink the approach until both balls start inside the frame
        if k == tries // 2:
            contact = np.array([W / 2, H / 2])
        pa, pb = contact - n * a.radius, contact + n * b.radius
        pa0, pb0 = pa - vel_a * t_c, pb - vel_b * t_c
        if all(_inside(o, *p, W, H) for o, p in ((a, pa), (b, pb), (a, pa0), (b, pb0))):
            break
        t_c *= 0.8
    (a.x, a.y), (b.x, b.y) = pa0, pb0
    (a.vx, a.vy), (b.vx, b.vy) = vel_a, vel_b


def _occlude(rng, o, W, H, duration, speeds, background) -> Occluder:
    """A full-height bar wider than the object, which crosses it half-way through the clip (fast speeds
    only: a slow object would not get past the bar in a short clip)."""
    el, er, eb, et = palette.shape_extents(o.shape, o.radius)
    width = 2.4 * el + 0.4
    xc = W / 2 + rng.uniform(-1, 1)
    lo, hi = speeds["fast"]
    o.speed, v = "fast", float(rng.uniform(lo, hi))
    sign = 1 if rng.random() < 0.5 else -1
    o.vx, o.vy = sign * v, 0.0
    o.x, o.y = xc - o.vx * duration / 2, rng.uniform(eb, H - et)
    colors = [name for name, rgb in palette.OCCLUDERS.items()
              if min(palette.rgb_distance(rgb, background.rgb), palette.rgb_distance(rgb, o.rgb))
              >= palette.MIN_OCCLUDER_DISTANCE]
    return Occluder(xc - width / 2, xc + width / 2, 0.0, H, colors[rng.integers(len(colors))])
