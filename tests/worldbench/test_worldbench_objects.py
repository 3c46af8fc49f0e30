"""Attributes are gated on coherent objects: a region must keep its size and colour in most frames."""

import numpy as np

from tenku.world.render import render
from tenku.world.scene import WorldObject, build_scene
from tenku.worldbench.detect import detect_frames
from tenku.worldbench.metrics import score_clip
from tenku.worldbench.objects import coherent_objects
from tenku.worldbench.prompt import parse_prompt

PROMPT = parse_prompt("A red ball moves to the right.")


def ball_clip():
    return render(build_scene("uniform", [WorldObject("ball", "red", 0.9, x=3.0, y=5.0, vx=2.0)], frames=9))


def test_a_steady_ball_is_an_object_and_scores():
    m = score_clip(ball_clip(), 8.0, PROMPT)[0]
    assert m["no_object"] == 0.0 and m["color_accuracy"] == 1.0 and m["direction_accuracy"] == 1.0


def test_a_ball_seen_in_few_frames_is_no_object():
    f = ball_clip()
    f[3:] = f[0, 0, 0]  # gone after 3 of 9 frames: the background only
    m = score_clip(f, 8.0, PROMPT)[0]
    assert m["no_object"] == 1.0 and m["color_accuracy"] == 0.0 and m["direction_accuracy"] == 0.0


def test_a_blob_that_swells_is_no_object():
    frames = [render(build_scene("still", [WorldObject("ball", "red", r, x=5.0, y=5.0)], frames=1))[0]
              for r in np.linspace(0.5, 2.0, 9)]  # area x16 over the clip
    assert coherent_objects(detect_frames(np.stack(frames), 8.0)) == []


def test_an_off_colour_region_is_no_object():
    f = ball_clip().astype(np.int16)
    red = (f[..., 0] > 150) & (f[..., 1] < 80)
    f[red] += np.array([0, 45, 45], np.int16)  # (225, 80, 80): nearest red, but far from pure red
    det = detect_frames(np.clip(f, 0, 255).astype(np.uint8), 8.0)
    assert [t.color for t in det.objects()] == ["red"] and coherent_objects(det) == []
