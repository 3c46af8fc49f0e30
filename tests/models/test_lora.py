"""LoRA adapters (tenku/models/lora.py): fresh adapters change nothing, training moves only them, folders round-trip
exactly, merging equals the unmerged adapter, and bad folders give clear errors."""

import json
import sys
from pathlib import Path

import pytest
import torch

from tenku import flow
from tenku.checkpoint import CheckpointError, save_tensors
from tenku.config import preset
from tenku.models.dit import DiT
from tenku.models.lora import add_lora, lora_state, merge_lora, merged_state, read_lora, save_lora

pytest.importorskip("peft")


def _dit(seed=0):
    """A tiny DiT that looks trained: its zero-initialised head and gates would pass no gradient to adapters."""
    torch.manual_seed(seed)
    dit = DiT(preset("tiny").dit).eval()
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return dit


def _inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 3, 8, 8, generator=g)  # (B, C, T', h, w)
    t = torch.rand(2, generator=g)
    text = torch.randn(2, 5, preset("tiny").dit.text_dim, generator=g)
    return x, t, text, torch.ones(2, 5, dtype=torch.bool)


def _trained(steps=40):
    """A tiny DiT with rank-4 adapters trained on one fixed batch; returns (dit, frozen copy of base, losses)."""
    dit = _dit()
    base = {k: v.clone() for k, v in dit.state_dict().items()}
    add_lora(dit, rank=4)
    opt = torch.optim.AdamW([p for p in dit.parameters() if p.requires_grad], lr=2e-2)
    x, _, text, mask = _inputs()
    cfg, losses = preset("tiny").flow, []
    for step in range(steps):
        g = torch.Generator().manual_seed(step % 2)  # two fixed noise draws: the loss can only fall by learning
        loss = flow.training_loss(dit.train(), x, text, mask, cfg, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return dit.eval(), base, losses


def test_fresh_adapter_changes_nothing_and_only_adapters_train():
    dit, args = _dit(), _inputs()
    with torch.no_grad():
        before = dit(*args)
    add_lora(dit, rank=4)
    trainable = [n for n, p in dit.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("self_attn.q" in n for n in trainable) and any("ffn.2" in n for n in trainable)
    with torch.no_grad():
        assert torch.equal(dit(*args), before)  # B = 0 at start


def test_training_lowers_loss_and_keeps_frozen_weights_bit_identical():
    dit, base, losses = _trained()
    assert sum(losses[-4:]) < 0.95 * sum(losses[:4]), losses
    state = dit.state_dict()
    for k, v in base.items():  # peft keeps the original weight under base_layer
        k2 = k if k in state else k.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        assert torch.equal(state[k2], v), k
    with torch.no_grad():
        assert not torch.allclose(dit(*_inputs()), _dit()(*_inputs()))  # the adapter does change outputs


def test_save_load_exact_and_merge_equals_adapter(tmp_path):
    dit, _, _ = _trained(steps=5)
    save_lora(dit, tmp_path / "lora", base="tiny-test", clips=8)
    cfg, state = read_lora(tmp_path / "lora")
    assert cfg["r"] == 4 and json.loads((tmp_path / "lora" / "tenku_lora.json").read_text())["clips"] == 8
    for k, v in lora_state(dit).items():
        assert torch.equal(state[k], v)
    args = _inputs()
    with torch.no_grad():
        want = dit(*args)
        merged = merge_lora(_dit(), tmp_path / "lora")
        assert type(merged.blocks[0].self_attn.q) is torch.nn.Linear  # merged away: plain layers again
        torch.testing.assert_close(merged(*args), want, rtol=1e-5, atol=1e-5)
        zero = merge_lora(_dit(), tmp_path / "lora", scale=0.0)
        torch.testing.assert_close(zero(*args), _dit()(*args), rtol=1e-6, atol=1e-6)


def test_bad_folders_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_lora(tmp_path / "nope")
    (tmp_path / "pickle").mkdir()
    (tmp_path / "pickle" / "adapter_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match="safetensors only"):
        read_lora(tmp_path / "pickle")
    dit, _, _ = _trained(steps=1)
    save_lora(dit, tmp_path / "ok")
    bigger = preset("tiny").dit
    bigger.num_layers = 1  # the adapter has blocks.1, this model has not
    with pytest.raises(CheckpointError, match="lacks"):
        merge_lora(DiT(bigger), tmp_path / "ok")
    save_tensors(tmp_path / "ok" / "adapter_model.safetensors", {"w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="not LoRA adapter weights"):
        read_lora(tmp_path / "ok")
    with pytest.raises(ValueError, match="rank"):
        add_lora(_dit(), rank=0)


def test_generate_with_lora_flag(tmp_path, capsys):
    from tenku.checkpoint import save_model_dir
    from tenku.cli import main
    from tenku.models.vae import VideoVAE
    from tenku.data.video_io import read_video

    cfg = preset("tiny")
    model = save_model_dir(tmp_path / "m", cfg, VideoVAE(cfg.vae), _dit())
    dit, _, _ = _trained(steps=5)
    save_lora(dit, tmp_path / "lora")
    run = lambda name, *extra: (main(["generate", "a red ball", "--model", str(model), "--frames", "5", "--steps", "2",  # noqa: E731
                                      "-o", str(tmp_path / name), "-q", *extra]), read_video(tmp_path / name)[0])
    rc0, base = run("base.mp4")
    rc1, tuned = run("lora.mp4", "--lora", str(tmp_path / "lora"))
    rc2, zero = run("zero.mp4", "--lora", str(tmp_path / "lora"), "--lora-scale", "0")
    assert rc0 == rc1 == rc2 == 0
    assert not (base == tuned).all() and (base == zero).all()
    capsys.readouterr()
    assert main(["generate", "x", "--model", str(model), "--lora", str(tmp_path / "nope"), "-q"]) == 2
    assert "LoRA adapter folder not found" in capsys.readouterr().err


def test_merged_state_loads_into_a_plain_dit_with_the_same_output():
    dit, _, _ = _trained(steps=3)
    plain = DiT(preset("tiny").dit).eval()
    plain.load_state_dict(merged_state(dit))  # strict: exactly the plain model's keys
    with torch.no_grad():
        torch.testing.assert_close(plain(*_inputs()), dit(*_inputs()), rtol=1e-5, atol=1e-5)
    assert any("lora_A" in k for k in dit.state_dict())  # the adapted model itself is unchanged


def test_train_dit_with_lora_rank_trains_adapters_on_a_frozen_base_and_resumes(tmp_path):
    import warnings

    from tenku.data.cache import collate_latents
    from tenku.checkpoint import load_state, save_model_dir
    from tenku.train.loop import train
    from tenku.train.config import resolve
    from tenku.models.vae import VideoVAE
    sys.path.insert(0, str(Path(__file__).parents[1] / "train"))  # its stand-in data, also when run alone
    from test_train import FixedLatents

    cfg = preset("tiny")
    base = save_model_dir(tmp_path / "base", cfg, VideoVAE(cfg.vae), _dit())
    sets = ["lr=1e-2", "warmup_steps=1", "lora_rank=4", f"init_from={base}", "checkpoint_every=5", "ema_decay=0"]
    run = str(tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(resolve("tiny-test", sets=sets + ["steps=10"], task="dit", out=run), dataset=FixedLatents(n=4),
              collate=collate_latents)
        out = train(resolve("tiny-test", sets=sets + ["steps=20"], task="dit", out=run), dataset=FixedLatents(n=4),
                    collate=collate_latents, resume_run=True)
    steps = [json.loads(x)["step"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert steps[-1] == 20 and 11 in steps  # resumed after step 10
    exported = DiT(cfg.dit)
    load_state(exported, out / "dit.safetensors")  # a plain model directory with the adapter folded in
    with torch.no_grad():
        want = merge_lora(_dit(), tmp_path / "run" / "lora")(*_inputs())
        torch.testing.assert_close(exported.eval()(*_inputs()), want, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(want, _dit()(*_inputs()))  # it learnt something
    with pytest.raises(ValueError, match="lora_rank 4 needs task dit, init_from"):
        resolve("tiny-test", sets=["lora_rank=4"], task="dit", out=run)
