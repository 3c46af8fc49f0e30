"""Hostile model directories: a bad config.json fails with a message naming the file and field, before any
model is built (issue 17, items 6 and 7)."""

import json
import resource
import time

import pytest

from tenku.checkpoint import CheckpointError
from tenku.cli import main
from tenku.pipeline import Pipeline, init_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return init_model(tmp_path_factory.mktemp("m") / "tiny", "tiny")


def edited(model_dir, tmp_path, section, **fields):
    """A copy of the tiny model whose config.json has `fields` set in `section`."""
    out = tmp_path / "edited"
    out.mkdir()
    for f in ("vae.safetensors", "dit.safetensors"):
        (out / f).write_bytes((model_dir / f).read_bytes())
    d = json.loads((model_dir / "config.json").read_text())
    d[section].update(fields)
    (out / "config.json").write_text(json.dumps(d))
    return out


@pytest.mark.parametrize("section,fields,text", [
    ("dit", {"dim": "big"}, "dit.dim must be an integer, got 'big'"),
    ("dit", {"num_heads": 0}, "dit.num_heads must be in [1, 256], got 0"),
    ("dit", {"patch_size": [1, 2]}, "dit.patch_size must be (pt, ph, pw)"),
    ("dit", {"qk_norm": "yes"}, "dit.qk_norm must be true or false"),
    ("vae", {"channel_mult": "abc"}, "vae.channel_mult must be a list of integers"),
    ("sample", {"guidance": None}, "sample.guidance must be a number"),
])
def test_bad_field_names_file_and_field(model_dir, tmp_path, section, fields, text):
    path = edited(model_dir, tmp_path, section, **fields)
    with pytest.raises(CheckpointError) as e:
        Pipeline.from_dir(path)
    assert str(path / "config.json") in str(e.value) and text in str(e.value)


@pytest.mark.parametrize("fields,text", [
    ({"dim": 200000}, "dit.dim must be in [2, 8192], got 200000"),
    ({"num_layers": 100000}, "dit.num_layers must be in [1, 256], got 100000"),
    # Within the bounds but not what the file holds: refused from the file's header, before building.
    ({"dim": 8192, "ffn_dim": 65536, "num_layers": 256, "num_heads": 64}, "dit.safetensors does not match"),
])
def test_huge_config_is_refused_before_allocating(model_dir, tmp_path, fields, text):
    path = edited(model_dir, tmp_path, "dit", **fields)
    t0, rss0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match=text.replace("[", r"\[").replace("]", r"\]")):
        Pipeline.from_dir(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert grown_mb < 500 and time.monotonic() - t0 < 30  # the 343-billion-parameter model was never built


def test_cli_exits_2_naming_the_file(model_dir, tmp_path, capsys):
    path = edited(model_dir, tmp_path, "dit", dim="big")
    assert main(["generate", "p", "--model", str(path), "-o", str(tmp_path / "x.mp4"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "config.json" in err and "dit.dim must be an integer" in err
    assert not (tmp_path / "x.mp4").exists()
