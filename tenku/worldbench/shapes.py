"""The detector's own shape templates: pixel coverage of a disc, an axis-aligned square and an upright equilateral
triangle (the shapes `tenku.vocab` names), and the fits that name a mask's shape from them.

These are WorldBench's own geometry, written from the shapes' definitions, not the renderer's distance fields:
a square's coverage is its exact area over each pixel (a product of overlaps), a disc's and a triangle's the
distance to the boundary measured from each pixel centre (to the circle; to the nearest of three edge lines),
so shape accuracy measures recognition from pixels, not agreement with the renderer's code.

Pixel units, y up, offsets relative to the shape's centre (a triangle's centroid).
"""

from __future__ import annotations

import numpy as np

from tenku.worldbench.colors import SHAPES

SQRT3 = 3**0.5
# Outward normals of an upright equilateral triangle's edges (bottom, upper right, upper left); each edge lies
# at the inradius (half the circumradius) from the centroid.
TRIANGLE_NORMALS = np.array([[0.0, -1.0], [SQRT3 / 2, 0.5], [-SQRT3 / 2, 0.5]])


def radius_from_area(shape: str, area: float) -> float:
    """Half-extent (circle radius, half side, circumradius) of a shape with this area."""
    if shape == "ball":
        return float(np.sqrt(area / np.pi))
    if shape == "square":
        return float(np.sqrt(area) / 2)
    if shape == "triangle":
        return float(np.sqrt(4 * area / (3 * SQRT3)))
    raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")


def area_of(shape: str, radius: float) -> float:
    """Area of a shape of this half-extent (the inverse of radius_from_area)."""
    return radius**2 / radius_from_area(shape, 1.0) ** 2  # area grows with the square of the half-extent


def _overlap(d: np.ndarray, r: float) -> np.ndarray:
    """Length of [d - 0.5, d + 0.5] inside [-r, r]: a pixel's share along one axis of a centred box."""
    return np.clip(np.minimum(d + 0.5, r) - np.maximum(d - 0.5, -r), 0.0, 1.0)


def coverage(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Share of each pixel (centre offsets dx, dy from the shape's centre, broadcast together) inside the shape
    of half-extent r, in [0, 1]."""
    if shape == "square":
        return _overlap(dx, r) * _overlap(dy, r)
    if shape == "ball":
        edge = np.hypot(dx, dy) - r
    elif shape == "triangle":
        n = TRIANGLE_NORMALS
        edge = np.maximum.reduce([n[i, 0] * dx + n[i, 1] * dy for i in range(3)]) - r / 2
    else:
        raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")
    return np.clip(0.5 - edge, 0.0, 1.0)


def fit_shape(alpha: np.ndarray, cx: float, cy: float, area: float) -> str:
    """The template (same area and centroid; window pixel coordinates, y down) closest in L1 to an alpha window."""
    h, w = alpha.shape
    dx, dy = np.arange(w) + 0.5 - cx, -(np.arange(h) + 0.5 - cy)  # y up, relative to the centroid
    errors = {s: np.abs(coverage(s, dx[None, :], dy[:, None], radius_from_area(s, area)) - alpha).sum()
              for s in SHAPES}
    return min(errors, key=errors.get)


def fit_hidden(alpha: np.ndarray, usable: np.ndarray, cx: float, cy: float, area: float):
    """(shape, cx, cy, half-extent, visible share) of the template that best explains a partly hidden object: each shape's
    centre and half-extent fitted (least squares, coordinate search) to the alpha window on the usable pixels
    only (not the occluder), so the centre is where the whole object is, not the centroid of its visible part
    (which lags behind a bar, halving a measured speed). Window pixel coordinates, y down."""
    h, w = alpha.shape
    xs, ys = np.arange(w) + 0.5, np.arange(h) + 0.5

    def cover(shape, p):
        return coverage(shape, xs[None, :] - p[0], -(ys[:, None] - p[1]), p[2])

    def err(shape, p):
        return float((((cover(shape, p) - alpha) * usable) ** 2).sum()) if p[2] > 0.3 else np.inf

    best = None
    for shape in SHAPES:
        p = np.array([cx, cy, radius_from_area(shape, area)])
        e, step = err(shape, p), 0.5
        while step > 0.02:
            moved = False
            for j in range(3):
                for s in (step, -step):
                    q = p.copy()
                    q[j] += s
                    eq = err(shape, q)
                    if eq < e:
                        p, e, moved = q, eq, True
            if not moved:
                step /= 2
        if best is None or e < best[0]:
            full = cover(shape, p).sum()
            best = (e, shape, p, (cover(shape, p) * usable).sum() / max(full, 1e-9))
    _, shape, p, visible = best
    return shape, float(p[0]), float(p[1]), float(p[2]), float(visible)
