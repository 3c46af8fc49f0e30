"""bench/text_probe.py: its classifiers separate what is separable and fail on noise; the span is the word's own."""

import importlib.util
from pathlib import Path

import torch

spec = importlib.util.spec_from_file_location("text_probe", Path(__file__).parents[1] / "bench" / "text_probe.py")
text_probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(text_probe)


def _clusters(n_per: int, classes: int, spread: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, 16, generator=torch.Generator().manual_seed(99)) * 3
    y = torch.arange(classes).repeat_interleave(n_per)
    return centres[y] + spread * torch.randn(len(y), 16, generator=g), y


def test_probes_read_separable_classes_and_not_noise():
    train_x, train_y = _clusters(10, 4, 0.5, seed=0)
    test_x, test_y = _clusters(5, 4, 0.5, seed=1)
    assert (text_probe.linear_probe(train_x, train_y, test_x, 4) == test_y).float().mean() > 0.95
    assert (text_probe.nearest(train_x, train_y, test_x) == test_y).float().mean() > 0.95
    noise_x = torch.randn(400, 16, generator=torch.Generator().manual_seed(2))
    noise_y = torch.randint(0, 4, (400,), generator=torch.Generator().manual_seed(3))
    acc = (text_probe.linear_probe(noise_x[:200], noise_y[:200], noise_x[200:], 4) == noise_y[200:]).float().mean()
    assert acc < 0.45  # chance is 0.25


def test_span_is_the_probed_word():
    from tenku.models.text import TextEncoder, minilm_path

    enc = TextEncoder(minilm_path(), 48, backend="transformers")
    frame = "A {} ball moves to the left."
    a, b = text_probe.span_states(enc, frame, "red"), text_probe.span_states(enc, frame, "blue")
    assert a.shape == (7, enc.dim)
    # The embedding layer (0) of a one-token word is its token embedding plus position, so it changes with the
    # word, not with the words after it when the position is the same.
    c = text_probe.span_states(enc, "A {} square drifts up.", "red")
    assert torch.allclose(a[0], c[0], atol=1e-4)
    assert not torch.allclose(a[0], b[0], atol=1e-2)


def test_caption_neighbours_reads_the_nearest_training_caption(tmp_path, capsys):
    import json

    from tenku.models.text import load_text_encoder

    def manifest(name, rows):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"video": "clip.mp4", "caption": c, "scene": {"objects": [
            {"color": col, "shape": "ball", "direction": d}]}}) + "\n" for c, col, d in rows))
        return path

    train = manifest("train", [("A red ball moves to the left.", "red", "left"),
                               ("A blue ball moves up.", "blue", "up")])
    same = manifest("id", [("A red ball moves to the left.", "red", "left"), ("A blue ball moves up.", "blue", "up")])
    swapped = manifest("para", [("A red ball moves to the left.", "blue", "up"),  # labels the caption contradicts
                                ("A blue ball moves up.", "red", "left")])
    text_probe.caption_neighbours(load_text_encoder("minilm"), train, {"id": same, "swapped": swapped})
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| id") or "swapped" in line]
    assert rows[0].split("|")[3:6] == [" 1.000 ", " 1.000 ", " 1.000 "]
    assert rows[1].split("|")[3] == " 0.000 " and rows[1].split("|")[5] == " 0.000 "


def test_extra_colour_words_leave_the_held_out_words_held_out():
    from tenku.vocab import BACKGROUND_WORDS, COLOR_WORDS, OCCLUDER_WORDS, SHAPE_WORDS

    extra = text_probe.EXTRA_COLOUR_WORDS
    assert set(extra) == set(COLOR_WORDS)
    held = {w for _, ws in COLOR_WORDS.values() for w in ws}
    others = {w for table in (BACKGROUND_WORDS, OCCLUDER_WORDS, SHAPE_WORDS) for lists in table.values()
              for ws in lists for w in ws}
    train = {w for ws, _ in COLOR_WORDS.values() for w in ws}
    words = [w for ws in extra.values() for w in ws]
    assert len(words) == len(set(words))  # no word names two colours
    for w in words:
        assert w not in train
        # no held-out word or other attribute's word inside an extra one ("cherry-red" would leak "cherry-red")
        assert not any(h in w or w in h for h in held), w
        assert not any(o in w.split() or o in w.split("-") for o in others), w
