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


def _pixel_grid(scene, height: int, width: int, sub: int = 1):
    """World coordinates of (sub-)pixel centres: x (1, 1, W*sub), y (1, H*sub, 1); row 0 is the top."""
    x = (np.arange(width * sub) + 0.5) / (width * sub) * scene.world_w
    y = scene.world_h - (np.arange(height * sub) + 0.5) / (height * sub) * scene.world_h
    return x[None, None, :].astype(np.float32), y[None, :, None].astype(np.float32)


def _background(scene, times: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, H, W, 3) float32 background for the given frame times."""
    bg = np.asarray(scene.background.rgb, np.float32)
    tex = scene.background.texture
    if not tex:
        return np.broadcast_to(bg, (len(times), height, width, 3)).astype(np.float32)
    s = TEXTURE_SUPERSAMPLE
    x, y = _pixel_grid(scene, height, width, s)
    cam = np.asarray(scene.camera, np.float32)
    wx = x + cam[0] * times[:, None, None]  # (T, 1, W*s) world coordinates: the texture is fixed to the world
    wy = y + cam[1] * times[:, None, None]  # (T, H*s, 1)
    cell = float(tex.get("cell", 2.5))
    cx, cy = np.floor(wx / cell).astype(np.int64), np.floor(wy / cell).astype(np.int64)
    odd = (cx + cy) % 2 if tex["kind"] == "checker" else np.broadcast_to(cx % 2, cx.shape[:1] + (height * s, width * s))
    odd = odd.reshape(len(times), height, s, width, s).mean(axis=(2, 4), dtype=np.float32)  # (T, H, W)
    rgb2 = np.asarray(tex["rgb2"], np.float32)
    return bg + odd[..., None] * (rgb2 - bg)  # (T, H, W, 3)


def render(scene, height: int | None = None, width: int | None = None) -> np.ndarray:
    """Frames of a scene, (T, H, W, 3) uint8. height/width default to the scene's own; other sizes should
    keep its aspect ratio (the world is stretched otherwise)."""
    height, width = height or scene.height, width or scene.width
    frames = scene.frames
    if frames < 1:
        raise ValueError("scene has no states; build it with build_scene or sample_scene")
    ppu = height / scene.world_h  # pixels per world unit
    x, y = _pixel_grid(scene, height, width)
    out = np.empty((frames, height, width, 3), np.uint8)
    for f0 in range(0, frames, FRAME_CHUNK):
        idx = np.arange(f0, min(f0 + FRAME_CHUNK, frames))
        img = _background(scene, idx / scene.fps, height, width)  # (t, H, W, 3)
        for k, o in enumerate(scene.objects):
            cx = np.array([scene.states[i][k]["x"] for i in idx], np.float32)[:, None, None]  # (t, 1, 1)
            cy = np.array([scene.states[i][k]["y"] for i in idx], np.float32)[:, None, None]
            cover = np.clip(0.5 - shape_sdf(o.shape, x - cx, y - cy, o.radius) * ppu, 0, 1)  # (t, H, W)
            img += cover[..., None] * (np.asarray(o.rgb, np.float32) - img)
        for c in scene.occluders:
            cover = np.clip(0.5 - _box_sdf(x, y, c.x0, c.x1, c.y0, c.y1) * ppu, 0, 1)[..., None]  # (1, H, W, 1)
            img += cover * (np.asarray(c.rgb, np.float32) - img)
        out[idx] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out
