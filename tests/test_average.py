"""tenku average: the mean of model directories, refused across architectures; the result loads and generates."""

import pytest
import torch

from tenku.average import average_models
from tenku.checkpoint import CheckpointError, load_model_dir, load_tensors
from tenku.cli import main
from tenku.pipeline import init_model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("avg")
    return [init_model(root / f"m{seed}", "tiny", seed=seed) for seed in (0, 1, 2)]


def test_average_is_the_mean_of_every_tensor(models, tmp_path):
    out = average_models(models, tmp_path / "avg")
    for part in ("vae", "dit"):
        states = [load_tensors(m / f"{part}.safetensors") for m in models]
        mean = load_tensors(out / f"{part}.safetensors")
        for k, v in mean.items():
            torch.testing.assert_close(v, sum(s[k] for s in states) / 3, rtol=1e-6, atol=1e-7)
    load_model_dir(out)  # a model directory like any other
    one = average_models(models[:1], tmp_path / "one")
    assert all(torch.equal(a, b) for a, b in zip(load_tensors(one / "dit.safetensors").values(),
                                                 load_tensors(models[0] / "dit.safetensors").values()))


def test_other_architectures_and_missing_models_are_refused(models, tmp_path):
    other = init_model(tmp_path / "other", "world-xs", seed=0)
    with pytest.raises(CheckpointError, match="another architecture"):
        average_models([models[0], other], tmp_path / "bad")
    with pytest.raises(CheckpointError, match="not found"):
        average_models([models[0], tmp_path / "nothing"], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_cli(models, tmp_path, capsys):
    assert main(["average", str(models[0]), str(models[1]), "--out", str(tmp_path / "avg")]) == 0
    assert (tmp_path / "avg" / "config.json").is_file()
    assert main(["average", str(models[0]), str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "model directory not found" in capsys.readouterr().err
