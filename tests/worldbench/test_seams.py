"""Seam and drift metrics on Tenku World ground truth: true continuations score as seamless, splices do not."""

import math

import numpy as np
import pytest

from tenku.world import WorldObject, build_scene, render
from tenku.worldbench.seams import (drift_per_segment, first_frame_psnr, given_frames_unchanged, layout_iou,
                                   seam_continuity)

FPS = 8


def clip(motion="uniform", color="red", x=2.0, y=5.0, vx=2.0, vy=0.0, frames=17, shape="ball", radius=0.9):
    scene = build_scene(motion, [WorldObject(shape, color, radius, x=x, y=y, vx=vx, vy=vy)], frames=frames, fps=FPS)
    return render(scene)  # (T, 64, 64, 3) uint8


def test_true_continuation_is_seamless():
    r = seam_continuity(clip(), 8, FPS)
    assert r["matched"] == 1
    assert r["position_ratio"] == pytest.approx(1.0, abs=0.1)  # the seam step is like any other step
    assert r["color_jump"] < 5 and r["size_jump"] < 0.05 and r["velocity_jump"] < 0.3


def test_falling_object_velocity_is_continuous_across_a_seam():
    r = seam_continuity(clip("fall", "green", x=5, y=8, vx=0, radius=0.8), 6, FPS)  # bounce a few frames later
    assert r["velocity_jump"] < 0.3


def test_shifted_splice_jumps_in_position_and_velocity():
    a, b = clip(), clip(x=4, y=3, vx=-2.0)
    r = seam_continuity(np.concatenate([a[:8], b[8:]]), 8, FPS)
    assert r["position_jump"] > 2.0 and r["position_ratio"] > 5
    assert r["velocity_jump"] > 3.0  # +2 -> -2 units/s


def test_recoloured_splice_jumps_in_colour():
    a, b = clip(), clip(color="blue")
    r = seam_continuity(np.concatenate([a[:8], b[8:]]), 8, FPS)
    assert r["matched"] == 1  # paired across colours by position
    assert r["color_jump"] > 100 and r["position_ratio"] < 1.5


def test_seam_index_is_checked():
    with pytest.raises(ValueError, match="seam_index"):
        seam_continuity(clip(), 0, FPS)


def test_first_frame_psnr():
    a, b = clip(), clip(x=6)
    assert first_frame_psnr(a, a[0]) == math.inf
    assert first_frame_psnr(a, b[0]) < 25
    noisy = np.clip(a[0].astype(int) + np.random.default_rng(0).integers(-2, 3, a[0].shape), 0, 255).astype(np.uint8)
    assert first_frame_psnr(a, noisy) > 40
    with pytest.raises(ValueError, match="size"):
        first_frame_psnr(a, a[0, :32])


def test_given_frames_unchanged():
    a = clip()
    out = a.copy()
    out[-1] = 0
    assert given_frames_unchanged(out, a[:5], at="start") == 0
    assert given_frames_unchanged(out, a[-3:], at="end") == int(a[-1].max())
    with pytest.raises(ValueError, match="at must be"):
        given_frames_unchanged(out, a[:5], at="middle")


def test_drift_is_zero_on_ground_truth_and_large_after_a_colour_change():
    a = clip("bounce", "yellow", x=5, y=5, vx=3, vy=2, frames=24, shape="square", radius=1.0)
    rows = drift_per_segment(a, FPS, segment_s=1.0)
    assert len(rows) == 3 and all(r["present"] == 1.0 for r in rows)
    assert max(r["color_drift"] for r in rows) < 5 and max(r["size_drift"] for r in rows) < 0.05
    assert max(r["flicker"] for r in rows) < 1.0
    b = clip("bounce", "cyan", x=5, y=5, vx=3, vy=2, frames=24, shape="square", radius=1.0)
    rows = drift_per_segment(np.concatenate([a[:12], b[12:]]), FPS, segment_s=1.0)
    assert rows[0]["color_drift"] < 5 and rows[2]["color_drift"] > 100 and rows[2]["present"] == 1.0


def test_layout_iou_keeps_places_not_colours():
    a = clip()
    assert layout_iou(a, a, FPS) == 1.0
    assert layout_iou(a, clip(color="blue"), FPS) > 0.9  # an edit of the colour alone keeps the layout
    assert layout_iou(a, clip(x=7.0, vx=-2.0), FPS) < 0.3  # the other way across the frame: mostly apart
    assert math.isnan(layout_iou(np.zeros_like(a), np.zeros_like(a), FPS))
    with pytest.raises(ValueError, match="one shape"):
        layout_iou(a, a[:9], FPS)
