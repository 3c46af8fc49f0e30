"""bench/lora_personalise.py --subject-word: the pair's noun phrase, in any wording, becomes the made-up word."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tenku.world.captions import caption
from tenku.world.sample import sample_scene

spec = importlib.util.spec_from_file_location("lora_personalise", Path(__file__).parents[1] / "bench" / "lora_personalise.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.mark.parametrize("text, want", [
    ("A tiny azure cube falls towards the lower right.", "A tiny zorp falls towards the lower right."),
    ("An azure block drops down and bounces.", "A zorp drops down and bounces."),
    ("A royal blue box slides left on a dark blue background.", "A zorp slides left on a dark blue background."),
    ("We watch an average-sized sapphire tile as it coasts skyward.", "We watch an average-sized zorp as it coasts skyward."),
])
def test_subject_word_replaces_the_noun_phrase(text, want):
    assert bench.subject_caption(text, "blue", "square", "zorp") == want


def test_subject_word_refuses_a_caption_without_the_pair():
    with pytest.raises(ValueError, match="blue square"):
        bench.subject_caption("A red ball moves to the left.", "blue", "square", "zorp")


def test_every_generated_caption_of_a_pair_is_rewritten():
    """Whatever wording the world picks (train or paraphrase split), the colour and shape words are gone."""
    rng = np.random.default_rng(0)
    rewritten = 0
    for i in range(40):
        scene = sample_scene("train", seed=i, mix="simple")
        text = caption(scene, rng, "paraphrase" if i % 2 else "train")
        if len(scene.objects) == 1:
            new = bench.subject_caption(text, scene.objects[0].color, scene.objects[0].shape, "zorp")
            assert "zorp" in new and new != text
            rewritten += 1
    assert rewritten
