"""Tenku World splits (train/id/ood/combo/paraphrase) and captions."""

import re

import numpy as np
import pytest

from tenku.world import palette
from tenku.world.captions import caption
from tenku.world.sample import sample_scene

N = 300


def _scenes(split, n=N, **kw):
    return [sample_scene(split, seed, frames=kw.get("frames", 5), **{k: v for k, v in kw.items() if k != "frames"})
            for seed in range(n)]


@pytest.fixture(scope="module")
def train():
    return _scenes("train")


def _triples(scene):
    return {(o.color, o.shape, scene.motion) for o in scene.objects}


def _tokens(text):
    return set(re.findall(r"[a-z][a-z-]*", text.lower()))


def test_train_covers_every_motion_shape_and_colour(train):
    assert {s.motion for s in train} == set(palette.MOTIONS)
    assert {o.shape for s in train for o in s.objects} == set(palette.SHAPES)
    assert {o.color for s in train for o in s.objects} == set(palette.COLORS)
    assert {s.background.name for s in train} == set(palette.BACKGROUNDS)
    assert any(s.background.texture for s in train) and any(not s.background.texture for s in train)
    assert {len(s.objects) for s in train} == {1, 2, 3}


def test_id_is_a_different_stream_of_the_same_distribution(train):
    ids = _scenes("id", 100)
    assert all(a.to_dict() != b.to_dict() for a, b in zip(train, ids))
    for s in ids:
        for o in s.objects:
            assert any(lo <= o.radius <= hi for lo, hi in palette.SIZES.values())


def test_ood_speeds_and_sizes_are_outside_training_ranges(train):
    def in_ranges(v, table):
        return any(lo <= v <= hi for lo, hi in table.values())

    for s in train:
        for o in s.objects:
            assert in_ranges(o.radius, palette.SIZES)
            if o.speed:
                assert in_ranges(o.speed_value, palette.SPEEDS)
    moving = 0
    for s in _scenes("ood", 150):
        for o in s.objects:
            assert not in_ranges(o.radius, palette.SIZES), o
            if o.speed:
                assert not in_ranges(o.speed_value, palette.SPEEDS), o
                moving += 1
    assert moving > 50


def test_combo_triples_appear_only_in_combo(train):
    for split, scenes in [("train", train), ("id", _scenes("id", 100)), ("ood", _scenes("ood", 100))]:
        assert not any(_triples(s) & palette.COMBO_HOLDOUT for s in scenes), split
    combo = _scenes("combo", 150)
    assert all(_triples(s) & palette.COMBO_HOLDOUT for s in combo)
    assert {t for s in combo for t in _triples(s)} & palette.COMBO_HOLDOUT == set(palette.COMBO_HOLDOUT)


def test_paraphrase_uses_held_out_wording_on_id_scenes(train):
    train_vocab = set()
    for seed, s in enumerate(train):
        for k in range(3):
            train_vocab |= _tokens(caption(s, np.random.default_rng([seed, k]), "train"))
    for seed in range(100):
        p = sample_scene("paraphrase", seed, frames=5)
        assert p.to_dict() == sample_scene("id", seed, frames=5).to_dict()  # same scenes as id
        text = caption(p, np.random.default_rng(seed), "paraphrase")
        assert _tokens(text) - train_vocab, text  # at least one word training captions never use
        assert caption(p, np.random.default_rng(seed), "id") != text


def _words(text, words):
    return set(re.findall(r"[a-z]+", text.lower())) & words  # "bottom-left" counts as bottom and left


RIGHT, LEFT = {"right", "rightward"}, {"left", "leftward"}
UP, DOWN = {"up", "upward", "upper", "top", "skyward"}, {"down", "downward", "lower", "bottom", "floorward"}


@pytest.mark.parametrize("split", ["train", "paraphrase"])
def test_captions_name_colour_shape_and_correct_direction(split):
    from tenku.world.captions import COLOR_WORDS, SHAPE_WORDS

    col = 1 if split == "paraphrase" else 0
    checked = 0
    for seed in range(200):
        s = sample_scene(split, seed, frames=5)
        for k in range(2):
            text = caption(s, np.random.default_rng([seed, k]), split).lower()
            for o in s.objects:
                assert any(w in text for w in COLOR_WORDS[o.color][col]), (text, o.color)
                assert any(w in text for w in SHAPE_WORDS[o.shape][col]) or s.motion == "collide", (text, o.shape)
            dirs = {o.direction for o in s.objects}
            if dirs <= {"right", "up-right", "down-right"}:
                assert _words(text, RIGHT) and not _words(text, LEFT), text
                checked += 1
            if dirs <= {"left", "up-left", "down-left"}:
                assert _words(text, LEFT) and not _words(text, RIGHT), text
            if dirs == {"up"}:
                assert _words(text, UP) and not _words(text, DOWN), text
            if dirs <= {"down"} and s.motion != "still":
                assert _words(text, DOWN) and not _words(text, UP), text
            if s.motion == "still":
                assert not _words(text, RIGHT | LEFT | UP | DOWN), text
    assert checked > 20


def test_captions_vary():
    s = sample_scene("train", 1, frames=5)
    texts = {caption(s, np.random.default_rng(k), "train") for k in range(40)}
    assert len(texts) > 20
