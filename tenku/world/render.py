"""Anti-aliased rendering of a Scene into uint8 RGB frames, vectorised with numpy.

Each shape is a signed distance field; a pixel's coverage is clip(0.5 - distance_in_pixels, 0, 1), the
analytic box-filter coverage of a straight edge. Layers, back to front: background (plus texture, fixed to
the world so it moves with a pan), objects in id order, occluders. Pixels depend only on the scene (states,
colours) and the output size, so a manifest line re-renders bit-exactly.
"""

from __future__ import annotations

import numpy as np

SQRT3 = 3**0.5
TEXTURE_SUPERSAMPLE = 4  # the texture's hard edges are box-filtered on a 4x4 sub-pixel grid
FRAME_CHUNK = 16  # frames rendered at once: bounds memory at large sizes


def shape_sdf(shape: str, dx: np.ndarray, dy: np.ndarray, radius) -> np.ndarray:
    """Signed distance (negative inside) from points (dx, dy) relative to the centre to a shape of the given
    half-extent. Square: axis-aligned, half side = radius. Triangle: equilateral, pointing up, centroid at
    the centre, circumradius = radius."""
    if shape == "ball":
        return np.sqrt(dx * dx + dy * dy) - radius
    if shape == "square":
        qx, qy = np.abs(dx) - radius, np.abs(dy) - radius
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
        return outside + np.minimum(np.maximum(qx, qy), 0)
    if shape == "triangle":
        # Inigo Quilez's exact equilateral-triangle distance; h is half the side length.
        h = radius * SQRT3 / 2
        px, py = np.abs(dx) - h, dy + h / SQRT3
        fold = px + SQRT3 * py > 0
        px, py = np.where(fold, (px - SQRT3 * py) / 2, px), np.where(fold, (-SQRT3 * px - py) / 2, py)
        px = px - np.clip(px, -2 * h, 0)
        return -np.sqrt(px * px + py * py) * np.sign(py)
    raise ValueError(f"unknown shape {shape!r}; choose from ('ball', 'square', 'triangle')")


def _box_sdf(x, y, x0, x1, y0, y1):
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    qx, qy = np.abs(x - cx) - hx, np.abs(y - cy) - hy
    return np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2) + np.minimum(np.maximum(qx, qy), 0)


def _pixel_centres(n: int, sub: int = 1) -> np.ndarray:
    """Centres of n pixels (or n * sub sub-pixels) along an axis, in pixel units."""
    return ((np.arange(n * sub) + 0.5) / sub).astype(np.float32)


def _odd_fraction(coords: np.ndarray, cell: float) -> np.ndarray:
    """coords (T, N * s) world coordinates of sub-pixels -> (T, N): fraction in odd-numbered cells."""
    s = TEXTURE_SUPERSAMPLE
    odd = (np.floor(coords / cell) % 2).astype(np.float32)
    return odd.reshape(odd.shape[0], -1, s).mean(-1)


def _background(scene, times: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, H, W, 3) float32 background for the given frame times. The texture is box-filtered on a
    4x4 sub-pixel grid; a checker's odd cells cover ax (1 - ay) + (1 - ax) ay of a pixel, where ax, ay are
    the odd fractions along each axis, so only 1D sub-sampling is needed."""
    bg = np.asarray(scene.background.rgb, np.float32)
    img = np.empty((len(times), height, width, 3), np.float32)
    img[:] = bg
    tex = scene.background.texture
    if not tex:
        return img
    upp = scene.world_h / height  # world units per pixel
    cell = float(tex.get("cell", 2.5))
    cam = np.asarray(scene.camera, np.float32)
    wx = _pixel_centres(width, TEXTURE_SUPERSAMPLE)[None] * upp + cam[0] * times[:, None]  # (T, W*s) world x
    wy = scene.world_h - _pixel_centres(height, TEXTURE_SUPERSAMPLE)[None] * upp + cam[1] * times[:, None]
    ax = _odd_fraction(wx, cell)[:, None, :]  # (T, 1, W)
    if tex["kind"] == "checker":
        ay = _odd_fraction(wy, cell)[:, :, None]  # (T, H, 1)
        odd = ax * (1 - ay) + (1 - ax) * ay  # (T, H, W)
    else:
        odd = np.broadcast_to(ax, (len(times), height, width))
    img += odd[..., None] * (np.asarray(tex["rgb2"], np.float32) - bg)
    return img  # (T, H, W, 3)


def _window(x_lo, x_hi, y_lo, y_hi, scene, height: int, width: int):
    """Pixel rows/columns that can touch the world box [x_lo, x_hi] x [y_lo, y_hi] (a 1-pixel margin keeps
    every partially covered pixel inside). Returns (row slice, column slice, x centres, y centres)."""
    ppu = height / scene.world_h
    c0, c1 = max(0, int(np.floor(x_lo * ppu)) - 1), min(width, int(np.ceil(x_hi * ppu)) + 2)
    r0 = max(0, int(np.floor((scene.world_h - y_hi) * ppu)) - 1)
    r1 = min(height, int(np.ceil((scene.world_h - y_lo) * ppu)) + 2)
    x = (np.arange(c0, max(c0, c1)) + 0.5).astype(np.float32) / ppu  # world x of pixel centres
    y = scene.world_h - (np.arange(r0, max(r0, r1)) + 0.5).astype(np.float32) / ppu
    return slice(r0, r1), slice(c0, c1), x, y


def render(scene, height: int | None = None, width: int | None = None) -> np.ndarray:
    """Frames of a scene, (T, H, W, 3) uint8. height/width default to the scene's own; other sizes should
    keep its aspect ratio (the world is stretched otherwise)."""
    height, width = height or scene.height, width or scene.width
    frames = scene.frames
    if frames < 1:
        raise ValueError("scene has no states; build it with build_scene or sample_scene")
    ppu = height / scene.world_h  # pixels per world unit
    out = np.empty((frames, height, width, 3), np.uint8)
    for f0 in range(0, frames, FRAME_CHUNK):
        idx = np.arange(f0, min(f0 + FRAME_CHUNK, frames))
        img = _background(scene, idx / scene.fps, height, width)  # (t, H, W, 3)
        for k, o in enumerate(scene.objects):
            cx = np.array([scene.states[i][k]["x"] for i in idx], np.float32)  # (t,)
            cy = np.array([scene.states[i][k]["y"] for i in idx], np.float32)
            r = o.radius  # every shape fits in the box centre +- radius
            rows, cols, x, y = _window(cx.min() - r, cx.max() + r, cy.min() - r, cy.max() + r, scene, height, width)
            if not len(x) or not len(y):
                continue  # outside the frame in this chunk
            dx, dy = x[None, None, :] - cx[:, None, None], y[None, :, None] - cy[:, None, None]  # (t, 1, w), (t, h, 1)
            cover = np.clip(0.5 - shape_sdf(o.shape, dx, dy, r) * ppu, 0, 1)  # (t, h, w)
            win = img[:, rows, cols]  # a view: blending writes into img
            win += cover[..., None] * (np.asarray(o.rgb, np.float32) - win)
        for c in scene.occluders:
            rows, cols, x, y = _window(c.x0, c.x1, c.y0, c.y1, scene, height, width)
            cover = np.clip(0.5 - _box_sdf(x[None, :], y[:, None], c.x0, c.x1, c.y0, c.y1) * ppu, 0, 1)  # (h, w)
            win = img[:, rows, cols]
            win += cover[None, ..., None] * (np.asarray(c.rgb, np.float32) - win)
        out[idx] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out
