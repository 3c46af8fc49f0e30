import pytest
import torch

from tenku.checkpoint import (CheckpointError, load_model_config, load_state, load_tensors, save_json,
                              save_model_dir, save_tensors)
from tenku.config import ModelConfig, preset
from tenku.models.dit import DiT


def test_model_dir_round_trip_and_half_precision(tmp_path):
    cfg = preset("tiny")
    dit = DiT(cfg.dit)
    torch.nn.init.normal_(dit.head.head.weight)
    save_model_dir(tmp_path / "m", cfg, torch.nn.Linear(2, 2), dit, dtype=torch.float16)
    assert load_model_config(tmp_path / "m") == cfg
    assert load_tensors(tmp_path / "m" / "dit.safetensors")["head.head.weight"].dtype == torch.float16
    dit2 = DiT(cfg.dit)
    load_state(dit2, tmp_path / "m" / "dit.safetensors")
    assert dit2.head.head.weight.dtype == torch.float32
    assert torch.allclose(dit2.head.head.weight, dit.head.head.weight, atol=1e-2)


def test_truncated_and_mismatched_files_name_the_file(tmp_path):
    cfg = preset("tiny")
    save_model_dir(tmp_path / "m", cfg, torch.nn.Linear(2, 2), DiT(cfg.dit))
    f = tmp_path / "m" / "dit.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="dit.safetensors.*truncated or corrupted"):
        load_state(DiT(cfg.dit), f)
    f.write_bytes(data)
    other = preset("tiny").dit
    other.num_layers = 3
    with pytest.raises(CheckpointError, match="missing keys.*blocks.2"):
        load_state(DiT(other), f)
    other = preset("tiny").dit
    other.ffn_dim = 64
    with pytest.raises(CheckpointError, match="shape mismatch.*ffn"):
        load_state(DiT(other), f)


def test_config_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model_config(tmp_path / "nope")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model_config(tmp_path / "m")
    d = {"format_version": 1, **ModelConfig().to_dict()}
    d["dit"]["depth"] = 3
    save_json(tmp_path / "m" / "config.json", d)
    with pytest.raises(CheckpointError, match="unknown DiTConfig fields.*depth"):
        load_model_config(tmp_path / "m")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    save_tensors(tmp_path / "a.safetensors", {"x": torch.ones(3)})
    with pytest.raises(Exception):
        save_tensors(tmp_path / "a.safetensors", {"x": "not a tensor"})
    assert torch.equal(load_tensors(tmp_path / "a.safetensors")["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]  # no temporary left behind


def test_one_model_directory_loader_and_a_seeded_init(tmp_path):
    from tenku.checkpoint import init_model_dir, load_model_dir, state_sha256

    cfg = preset("tiny")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    init_model_dir(tmp_path / "a", cfg, seed=5)
    init_model_dir(tmp_path / "b", cfg, seed=5)
    init_model_dir(tmp_path / "c", cfg, seed=6)
    got, vae, dit = load_model_dir(tmp_path / "a")
    assert torch.equal(torch.get_rng_state(), before)  # neither writing nor loading moved the caller's RNG
    assert got == cfg and not vae.training and not dit.training
    _, vae_b, dit_b = load_model_dir(tmp_path / "b")
    assert state_sha256(dit) == state_sha256(dit_b) and state_sha256(vae) == state_sha256(vae_b)
    assert state_sha256(load_model_dir(tmp_path / "c", ("dit",))[1]) != state_sha256(dit)  # another seed
    assert state_sha256(dit.half()) == state_sha256(dit_b.half())  # the digest is of the values, in float32
    _, only_vae = load_model_dir(tmp_path / "a", ("vae",))
    assert state_sha256(only_vae) == state_sha256(vae)
    other = preset("tiny")
    other.dit.num_layers = 3  # a config that does not match the files fails before anything is built
    with pytest.raises(CheckpointError, match="dit.safetensors does not match.*missing keys"):
        load_model_dir(tmp_path / "a", cfg=other)
    with pytest.raises(ValueError, match="unknown model parts"):
        load_model_dir(tmp_path / "a", ("text",))
    with pytest.raises(CheckpointError, match="model directory not found"):
        load_model_dir(tmp_path / "missing")
