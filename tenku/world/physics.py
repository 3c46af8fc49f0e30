"""Exact 2D physics for Tenku World: an event-driven solver in closed form.

Between events every body moves in closed form (p + v t + a t^2 / 2). The solver finds the next event
exactly (a wall or floor contact, a ball-ball contact), advances everything to it, resolves it and repeats,
reading off the state at each frame time on the way. So positions are exact up to float rounding at any fps,
with no integration error. Which events exist depends on the scene's motion:

    still, uniform, occlude, pan : no walls (objects may leave the frame), no gravity
    bounce                       : elastic reflections off all four walls
    fall                         : gravity; floor bounces keep `restitution` of the vertical speed; elastic
                                   side walls; no ceiling
    collide                      : all four walls, and elastic ball-ball collisions (mass = radius^2)

A bouncing body whose rebound speed falls below REST_SPEED comes to rest on the floor (bounce height
< 5e-3 units, far below a pixel), which ends the otherwise infinite series of ever smaller bounces.
"""

from __future__ import annotations

import math

import numpy as np

from tenku.world import palette

REST_SPEED = 0.3  # world units / s
STATE_DECIMALS = 6  # states are rounded once, here, so manifests round-trip and re-render bit-exactly
_EPS = 1e-12

WALLS = {
    "still": (), "uniform": (), "occlude": (), "pan": (),
    "bounce": ("left", "right", "bottom", "top"),
    "fall": ("left", "right", "bottom"),
    "collide": ("left", "right", "bottom", "top"),
}


class _Bodies:
    """Mutable state of all bodies during a simulation."""

    def __init__(self, scene):
        self.pos = np.array([[o.x, o.y] for o in scene.objects], dtype=np.float64).reshape(-1, 2)  # (N, 2)
        self.vel = np.array([[o.vx, o.vy] for o in scene.objects], dtype=np.float64).reshape(-1, 2)  # (N, 2)
        self.ext = np.array([palette.shape_extents(o.shape, o.radius) for o in scene.objects]).reshape(-1, 4)
        self.mass = np.array([o.mass for o in scene.objects], dtype=np.float64)
        self.radius = np.array([o.radius for o in scene.objects], dtype=np.float64)
        self.ball = np.array([o.shape == "ball" for o in scene.objects])
        self.gravity = scene.gravity if scene.motion == "fall" else 0.0
        self.resting = np.zeros(len(scene.objects), dtype=bool)
        if self.gravity:  # a body placed on the floor with no upward speed rests from the start
            self.resting = (self.pos[:, 1] - self.ext[:, 2] <= 1e-9) & (self.vel[:, 1] <= REST_SPEED)
            self.pos[self.resting, 1] = self.ext[self.resting, 2]
            self.vel[self.resting, 1] = 0.0

    def acc_y(self) -> np.ndarray:
        return np.where(self.resting, 0.0, -self.gravity)  # (N,)

    def at(self, dt: float) -> tuple[np.ndarray, np.ndarray]:
        ay = self.acc_y()
        pos, vel = self.pos + self.vel * dt, self.vel.copy()
        pos[:, 1] += 0.5 * ay * dt * dt
        vel[:, 1] += ay * dt
        return pos, vel

    def advance(self, dt: float) -> None:
        self.pos, self.vel = self.at(dt)


def _floor_time(y: float, vy: float, g: float, floor: float) -> float:
    """Time until y + vy t - g t^2 / 2 falls to `floor` (g > 0), or inf when moving up without gravity."""
    h = max(y - floor, 0.0)
    if g == 0.0:
        return h / -vy if vy < 0 else math.inf
    return (vy + math.sqrt(vy * vy + 2 * g * h)) / g


def _next_event(b: _Bodies, walls, world_w: float, world_h: float, collide: bool):
    """(dt, kind, i, j) of the earliest event; kind is a wall name or "pair"."""
    best = (math.inf, None, -1, -1)
    for i in range(len(b.pos)):
        (x, y), (vx, vy), (el, er, eb, et) = b.pos[i], b.vel[i], b.ext[i]
        cands = []
        if "left" in walls and vx < 0:
            cands.append((max(x - el, 0.0) / -vx, "left"))
        if "right" in walls and vx > 0:
            cands.append((max(world_w - er - x, 0.0) / vx, "right"))
        if "top" in walls and vy > 0:  # only in scenes without gravity
            cands.append((max(world_h - et - y, 0.0) / vy, "top"))
        if "bottom" in walls and not b.resting[i] and (vy < 0 or b.gravity):
            cands.append((_floor_time(y, vy, b.gravity, eb), "bottom"))
        for dt, kind in cands:
            if dt < best[0]:
                best = (dt, kind, i, -1)
    if collide:
        for i in range(len(b.pos)):
            for j in range(i + 1, len(b.pos)):
                if not (b.ball[i] and b.ball[j]):
                    continue
                dp, dv = b.pos[j] - b.pos[i], b.vel[j] - b.vel[i]  # gravity is 0 here: relative motion is linear
                reach = b.radius[i] + b.radius[j]
                qa, qb, qc = dv @ dv, 2 * dp @ dv, dp @ dp - reach * reach
                if qb >= 0 or qa < _EPS:  # not approaching
                    continue
                disc = qb * qb - 4 * qa * qc
                if disc < 0:
                    continue
                dt = max((-qb - math.sqrt(disc)) / (2 * qa), 0.0)
                if dt < best[0]:
                    best = (dt, "pair", i, j)
    return best


def _resolve(b: _Bodies, kind: str, i: int, j: int, world_w: float, world_h: float, restitution: float):
    el, er, eb, et = b.ext[i]
    if kind == "left":
        b.pos[i, 0], b.vel[i, 0] = el, abs(b.vel[i, 0])
    elif kind == "right":
        b.pos[i, 0], b.vel[i, 0] = world_w - er, -abs(b.vel[i, 0])
    elif kind == "top":
        b.pos[i, 1], b.vel[i, 1] = world_h - et, -abs(b.vel[i, 1])
    elif kind == "bottom":
        e = restitution if b.gravity else 1.0
        b.pos[i, 1], b.vel[i, 1] = eb, e * abs(b.vel[i, 1])
        if b.gravity and b.vel[i, 1] < REST_SPEED:
            b.vel[i, 1], b.resting[i] = 0.0, True
    elif kind == "pair":
        # Elastic collision of discs: exchange momentum along the line of centres.
        n = b.pos[j] - b.pos[i]
        n /= np.linalg.norm(n)
        u = (b.vel[i] - b.vel[j]) @ n  # closing speed, > 0
        mi, mj = b.mass[i], b.mass[j]
        b.vel[i] -= 2 * mj / (mi + mj) * u * n
        b.vel[j] += 2 * mi / (mi + mj) * u * n


def simulate(scene, frames: int, max_events: int = 100_000) -> list[list[dict]]:
    """Per-frame states of every object (view coordinates, rounded to STATE_DECIMALS)."""
    walls = WALLS[scene.motion]
    collide = scene.motion == "collide"
    b = _Bodies(scene)
    times = np.arange(frames) / scene.fps
    positions = np.zeros((frames, len(b.pos), 2))  # (T, N, 2)
    velocities = np.zeros((frames, len(b.pos), 2))  # (T, N, 2)
    t, k = 0.0, 0
    for _ in range(max_events):
        dt, kind, i, j = _next_event(b, walls, scene.world_w, scene.world_h, collide)
        while k < frames and times[k] < t + dt:  # frames before the event
            positions[k], velocities[k] = b.at(times[k] - t)
            k += 1
        if k == frames:
            break
        b.advance(dt)
        t += dt
        _resolve(b, kind, i, j, scene.world_w, scene.world_h, scene.restitution)
    else:
        raise RuntimeError(f"physics did not finish within {max_events} events")

    # A pan moves the camera, not the objects: the view sees them shifted by -camera * t.
    cam = np.asarray(scene.camera, dtype=np.float64)
    positions -= cam * times[:, None, None]
    velocities -= cam
    visible = visibility(scene, positions)  # (T, N)
    radii = [o.radius for o in scene.objects]
    r = lambda v: round(float(v), STATE_DECIMALS) + 0.0  # noqa: E731  (+0.0 turns -0.0 into 0.0)
    return [
        [{"x": r(positions[f, n, 0]), "y": r(positions[f, n, 1]), "vx": r(velocities[f, n, 0]),
          "vy": r(velocities[f, n, 1]), "radius": radii[n], "visible": round(float(visible[f, n]), 4)}
         for n in range(len(radii))]
        for f in range(frames)
    ]


def shape_points(shape: str, n: int = 48) -> np.ndarray:
    """Points evenly covering a shape of radius 1 centred at 0, shape (P, 2): for area fractions."""
    from tenku.world.render import shape_sdf

    g = (np.arange(n) + 0.5) / n * 2 - 1
    xs, ys = np.meshgrid(g, g)
    inside = shape_sdf(shape, xs, ys, 1.0) < 0
    return np.stack([xs[inside], ys[inside]], axis=-1)


def visibility(scene, positions: np.ndarray) -> np.ndarray:
    """Fraction of each object's area inside the frame and not behind an occluder. positions: (T, N, 2)."""
    out = np.ones(positions.shape[:2])  # (T, N)
    for n, o in enumerate(scene.objects):
        pts = positions[:, n, None, :] + o.radius * shape_points(o.shape)[None]  # (T, P, 2)
        x, y = pts[..., 0], pts[..., 1]
        seen = (x >= 0) & (x <= scene.world_w) & (y >= 0) & (y <= scene.world_h)
        for c in scene.occluders:
            seen &= ~((x >= c.x0) & (x <= c.x1) & (y >= c.y0) & (y <= c.y1))
        out[:, n] = seen.mean(axis=1)
    return out
