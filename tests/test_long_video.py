import numpy as np
import pytest
import torch

from tenku.long_video import generate_long
from tenku.pipeline import init_model, load_pipeline
from tenku.request import parse_storyboard, prompt_at, window_plan
from tenku.data.video_io import read_video


def test_storyboard_parsing():
    shots = parse_storyboard("0-5s: a red ball rolls right; 5-10s: it falls")
    assert [(s.start, s.end, s.prompt) for s in shots] == [(0, 5, "a red ball rolls right"), (5, 10, "it falls")]
    assert prompt_at(shots, 4.9) == "a red ball rolls right" and prompt_at(shots, 12) == "it falls"
    js = parse_storyboard('[{"start": 0, "end": 2, "prompt": "a"}, {"start": 2, "end": 4, "prompt": "b"}]')
    assert [s.prompt for s in js] == ["a", "b"]
    assert len(parse_storyboard("just a prompt: with a colon")) == 1
    with pytest.raises(ValueError, match="contiguous"):
        parse_storyboard("0-5s: a; 6-10s: b")
    with pytest.raises(ValueError, match="part 2"):
        parse_storyboard("0-5s: a; five to ten: b")
    with pytest.raises(ValueError, match="list of"):
        parse_storyboard('[{"start": 0}]')


def test_window_plan_covers_every_frame_once():
    for total in (1, 9, 17, 18, 100, 481):
        plan = window_plan(total, window=17, history=5)
        assert plan[0] == (0, min(17, total))
        assert sum(n for _, n in plan) == total
        assert all(s2 == s1 + n1 for (s1, n1), (s2, _) in zip(plan, plan[1:]))
        assert all(n <= 12 for _, n in plan[1:])  # later windows add window - history frames
    with pytest.raises(ValueError):
        window_plan(40, window=16, history=5)


def test_long_video_streams_exact_length(tmp_path):
    pipe = load_pipeline(init_model(tmp_path / "m", "tiny"))
    torch.manual_seed(0)
    for p in pipe.dit.parameters():
        p.data.normal_(0, 0.05)
    seen = []
    out = generate_long(pipe, "0-1s: a red ball; 1-3s: a blue ball", seconds=3, output=tmp_path / "long.mp4",
                        fps=8, window=9, history=5, steps=2, callback=lambda i, n: seen.append((i, n)))
    frames, fps = read_video(out)
    assert frames.shape == (24, 32, 32, 3) and fps == 8
    assert seen[-1][0] == seen[-1][1] == len(window_plan(24, 9, 5))
