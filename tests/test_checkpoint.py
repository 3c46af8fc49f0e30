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


def test_model_dir_loads_onto_meta_built_modules_exactly(tmp_path):
    """load_model_dir builds on the meta device and takes the file's tensors: the same weights, dtypes, layouts
    and outputs as a module built for real and loaded with load_state, from a float16 directory."""
    from tenku.checkpoint import init_model_dir, load_model_dir
    from tenku.models.vae import VideoVAE

    cfg = preset("tiny")
    init_model_dir(tmp_path / "full", cfg, seed=3)
    _, vae, dit = load_model_dir(tmp_path / "full")
    with torch.no_grad():
        for p in dit.parameters():  # the zero-initialised gates and head would make any two DiTs agree
            p.normal_(0, 0.1)
    save_model_dir(tmp_path / "half", cfg, vae, dit, dtype=torch.float16)
    _, vae, dit = load_model_dir(tmp_path / "half")
    ref_vae, ref_dit = VideoVAE(cfg.vae), DiT(cfg.dit)
    load_state(ref_vae, tmp_path / "half" / "vae.safetensors")
    load_state(ref_dit, tmp_path / "half" / "dit.safetensors")
    for got, ref in [(vae, ref_vae.eval()), (dit, ref_dit.eval())]:
        mine, theirs = dict(got.named_parameters()), dict(ref.named_parameters())
        assert mine.keys() == theirs.keys() and all(p.requires_grad for p in mine.values())
        for k, v in got.state_dict().items():
            r = ref.state_dict()[k]
            assert not v.is_meta and v.dtype == r.dtype == torch.float32 and v.stride() == r.stride(), k
            assert torch.equal(v, r), k
    z, t = torch.randn(1, cfg.vae.latent_channels, 2, 4, 4), torch.tensor([0.5])
    text = torch.randn(1, 3, cfg.dit.text_dim)
    with torch.no_grad():
        assert torch.equal(vae.decode(z), ref_vae.decode(z))
        assert torch.equal(dit(z, t, text), ref_dit(z, t, text)) and dit(z, t, text).abs().sum() > 0


def test_a_meta_built_module_with_an_unsaved_buffer_is_refused(tmp_path):
    from tenku.checkpoint import build_on_meta

    class Scaled(torch.nn.Linear):
        def __init__(self):
            super().__init__(2, 2)
            self.register_buffer("scale", torch.ones(2), persistent=False)  # made by the model, never saved

    save_tensors(tmp_path / "s.safetensors", Scaled().state_dict())
    module = build_on_meta(Scaled, tmp_path / "s.safetensors")
    with pytest.raises(CheckpointError, match="no values for \\['scale'\\]"):
        load_state(module, tmp_path / "s.safetensors")


def test_loading_a_model_dir_draws_no_random_init(tmp_path):
    # Built on the meta device, the modules skip their init: a random draw there costs a fresh process the
    # torch._dynamo import (~0.6 s of the default command), and its result would be overwritten anyway.
    import subprocess
    import sys

    from tenku.pipeline import init_model

    init_model(tmp_path / "m", "tiny")
    code = ("import sys; from tenku.checkpoint import load_model_dir; load_model_dir(sys.argv[1]); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
