"""Chance rows can fail the model: on ground truth each metric is near its best, on every chance row near chance."""

import numpy as np
import pytest

from tenku.world.render import render
from tenku.world.sample import sample_scene
from tenku.worldbench.chance import ROWS, baseline, chance_rows
from tenku.worldbench.metrics import score_clip
from tenku.worldbench.report import aggregate
from tenku.worldbench.spec import spec_from_scene


@pytest.fixture(scope="module")
def rows():
    scenes = [sample_scene("id", i, mix="uniform") for i in range(6)] + [sample_scene("id", i) for i in range(6)]
    truth = [(render(s), s.fps, spec_from_scene(s.to_dict(), s.fps)) for s in scenes]
    out = {name: aggregate(clips) for name, clips in chance_rows(truth).items()}
    out["ground truth"] = aggregate([{"metrics": score_clip(f, fps, spec)[0]} for f, fps, spec in truth])
    return {row: {k: v["mean"] for k, v in m.items()} for row, m in out.items()}


def test_ground_truth_scores_near_best(rows):
    gt = rows["ground truth"]
    assert gt["color_accuracy"] >= 0.95 and gt["direction_accuracy"] >= 0.9 and gt["no_object"] <= 0.05


def test_noise_has_no_objects_and_scores_nothing(rows):
    for name in ("uniform noise", "blocky noise"):
        assert rows[name]["no_object"] == 1.0
        assert rows[name]["color_accuracy"] == 0.0 and rows[name]["shape_accuracy"] == 0.0


def test_frozen_frames_keep_looks_but_not_motion(rows):
    assert rows["frozen frame 0"]["color_accuracy"] >= 0.9
    assert rows["frozen frame 0"]["direction_accuracy"] <= 0.3 < rows["ground truth"]["direction_accuracy"]


def test_shuffled_captions_fall_to_chance_and_mirrored_swaps_sides(rows):
    assert rows["shuffled captions"]["color_accuracy"] <= rows["ground truth"]["color_accuracy"] - 0.4
    assert rows["mirrored"]["left_right_confusion"] >= 0.8 > 0.1 >= rows["ground truth"]["left_right_confusion"]
    assert rows["mirrored"]["color_accuracy"] >= 0.9  # only the sides changed


def test_baselines_keep_the_clip_shape():
    f = np.zeros((5, 24, 40, 3), np.uint8)
    rng = np.random.default_rng(0)
    for name in ROWS:
        assert baseline(name, f, rng).shape == f.shape
    with pytest.raises(ValueError, match="unknown chance row"):
        baseline("static", f, rng)


def test_shuffled_row_meets_its_expected_chance_level():
    from tenku.worldbench.chance import agreement, shuffled_expected

    scenes = [sample_scene("id", i) for i in range(10)]
    truth = [(render(s), s.fps, spec_from_scene(s.to_dict(), s.fps)) for s in scenes]
    assert all(v == 1.0 for k, v in agreement(truth[0][2], truth[0][2]).items() if k != "left_right_confusion")
    expected = shuffled_expected(truth)
    measured = aggregate(chance_rows(truth)["shuffled captions"])
    for k in ("color_accuracy", "shape_accuracy", "direction_accuracy"):
        assert abs(measured[k]["mean"] - expected[k]) <= 0.1, (k, measured[k]["mean"], expected[k])
