"""GenerateRequest.validate on the tiny preset's config (no weights): defaults, lengths, one clip or a window
plan, and the clear errors every caller (CLI, server, Python) gets."""

import numpy as np
import pytest

from tenku.config import preset
from tenku.request import GenerateRequest, RequestError, window_plan
from tenku.data.video_io import write_image, write_video

GB = 2**30


@pytest.fixture
def cfg():
    c = preset("tiny")  # 32x32, 9 frames (max_frames 33) at 8 fps, 4 steps, stride 16
    return c


def check(cfg, prompt="a red ball", **kw):
    return GenerateRequest(prompt, **kw).validate(cfg, budget=4 * GB)


def test_defaults_are_the_models_and_the_result_is_plain(cfg):
    c = check(cfg)
    r = c.request
    assert (r.frames, r.height, r.width, r.fps, r.steps, r.guidance, r.sampler, r.seed) == (9, 32, 32, 8, 4, 4.0, "euler", 0)
    assert c.windows is None and not c.one_frame and [s.prompt for s in c.shots] == ["a red ball"]
    assert r.options()["frames"] == 9 and "mode" not in r.options() and "video" not in r.options()
    assert check(cfg, frames=1).one_frame
    assert check(cfg, seconds=2).request.frames == 17  # the nearest 1 + 4k


def test_long_text_slides_a_window_and_a_validated_request_validates_to_itself(cfg):
    for kw, total in [(dict(seconds=60), 480), (dict(frames=100), 100), (dict(seconds=5, window=9), 40)]:
        c = check(cfg, **kw)
        r = c.request
        assert r.frames == total and r.seconds is None and c.windows == tuple(window_plan(total, r.window, 5))
        again = r.validate(cfg, budget=4 * GB)
        assert again.request == r and again.windows == c.windows
    assert len(check(cfg, seconds=60).windows) == 1 + -(-(480 - 33) // 28)  # 33-frame windows adding 28 each
    assert check(cfg, seconds=4).windows is None  # 33 frames: one clip


def test_a_storyboard_lasts_until_its_last_shot_and_always_slides(cfg):
    c = check(cfg, "0-1s: a red ball; 1-2.5s: a blue ball")
    assert c.request.frames == 20 and c.windows == tuple(window_plan(20, 33, 5))
    assert [s.prompt for s in c.shots] == ["a red ball", "a blue ball"]
    c = check(cfg, '[{"start": 0, "end": 1, "prompt": "a"}, {"start": 1, "end": 2, "prompt": "b"}]', seconds=6)
    assert c.request.frames == 48
    assert check(cfg, "0-2s: one shot").request.frames == 17 and check(cfg, "0-2s: one shot").windows is None


def test_sizes_follow_the_given_media(cfg, tmp_path):
    img = write_image(tmp_path / "a.png", np.zeros((48, 64, 3), np.uint8))
    r = check(cfg, mode="image", image=str(img)).request
    assert (r.height, r.width, r.frames) == (48, 64, 9)
    video = write_video(tmp_path / "v.mp4", np.zeros((7, 32, 32, 3), np.uint8), 8)
    assert check(cfg, mode="edit", video=str(video)).request.frames == 5  # the longest 1 + 4k prefix
    assert check(cfg, mode="extend", video=np.zeros((7, 32, 32, 3), np.uint8)).request.frames == 8  # new frames
    with pytest.raises(RequestError, match=r"image is 64x48 \(WxH\) but the video is 32x32; resize it") as e:
        check(cfg, mode="image", image=str(img), width=32, height=32)
    assert e.value.field == "image"


@pytest.mark.parametrize("kw,field,text", [
    (dict(mode="dance"), "mode", "unknown mode 'dance'; choose from text, image"),
    (dict(mode="extend"), "video", "mode 'extend' needs an input 'video'"),
    (dict(mode="image"), "image", "needs an input 'image' and/or 'last_image'"),
    (dict(video=np.zeros((5, 32, 32, 3), np.uint8)), "video", "mode 'text' takes no input 'video'"),
    (dict(prompt="  "), "prompt", "prompt must be a non-empty string"),
    (dict(prompt="0-1s: a; 2-3s: b"), "prompt", "contiguous"),
    (dict(prompt="0-1s: a; 1-2s: b", mode="loop"), "prompt", "a storyboard needs mode 'text'"),
    (dict(frames=9, seconds=1), "frames", "give frames or seconds, not both"),
    (dict(frames=16), "size", r"frames must be 1 + 4k (got 16; nearest valid: 13 or 17)"),
    (dict(frames=0), "size", "frames must be 1 + 4k (got 0"),
    (dict(frames=100001), "frames", "frames must be an integer in [1, 28800], got 100001 (the longest video)"),
    (dict(height=50), "size", "height must be a positive multiple of 16 (got 50; nearest valid: 48 or 64)"),
    (dict(steps=0), "steps", "steps must be an integer in [1, 1000], got 0"),
    (dict(fps=float("nan")), "fps", "fps must be a number"),
    (dict(sampler="ddim"), "sampler", "unknown sampler 'ddim'"),
    (dict(seconds=60, window=8), "window", "window (8) and history (5) must be 1 + 4k"),
    (dict(mode="extend", video=np.zeros((5, 32, 32, 3), np.uint8), frames=0), "frames", "at least one new frame"),
    (dict(mode="extend", video=np.zeros((5, 32, 32, 3), np.uint8), direction="up"), "direction", "'forward' or"),
    (dict(mode="edit", video=np.zeros((5, 32, 32, 3), np.uint8), strength=0), "strength", "strength must be in (0, 1]"),
    (dict(mode="edit", video=np.zeros((5, 32, 32, 3), np.uint8), frames=9), "frames", "more than the video's 5"),
    (dict(height=4096, width=4096), "size", "GB (upper estimate)"),
])
def test_bad_requests_name_the_field(cfg, kw, field, text):
    prompt = kw.pop("prompt", "a red ball")
    with pytest.raises(RequestError) as e:
        check(cfg, prompt, **kw)
    assert text in str(e.value) and e.value.field == field
    assert isinstance(e.value, ValueError)  # the command line's exit 2


def test_from_inputs_chooses_the_mode():
    a = np.zeros((5, 32, 32, 3), np.uint8)
    assert GenerateRequest.from_inputs("p").mode == "text"
    r = GenerateRequest.from_inputs("p", connect=(a, a), frames=4)
    assert (r.mode, r.video_a is a, r.video_b is a, r.frames) == ("connect", True, True, 4)
    assert GenerateRequest.from_inputs("p", edit=a).video is a and GenerateRequest.from_inputs("p", loop=True).mode == "loop"
    with pytest.raises(RequestError, match="choose one mode, got image \\+ extend"):
        GenerateRequest.from_inputs("p", image=a[0], extend=a)
