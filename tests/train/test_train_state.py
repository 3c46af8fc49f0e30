"""Training checkpoints: optimizer/RNG round trips, keep-last, atomic folders, truncated files and fallback."""

import random

import numpy as np
import pytest
import torch

from tenku.checkpoint import CheckpointError
from tenku.train.state import (checkpoint_dirs, flatten_state, load_checkpoint, resume, save_checkpoint,
                               unflatten_state)


def _setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99))
    return model, opt, {"noise": torch.Generator().manual_seed(seed + 1)}


def _train(model, opt, steps=3):
    for _ in range(steps):
        loss = model(torch.randn(5, 4)).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()


def test_optimizer_state_flattens_to_tensors_and_json():
    model, opt, _ = _setup()
    _train(model, opt)
    tensors = {}
    struct = flatten_state(opt.state_dict(), tensors)
    assert all(torch.is_tensor(t) for t in tensors.values()) and "state.0.exp_avg" in tensors
    back = unflatten_state(struct, tensors)
    assert back["param_groups"] == opt.state_dict()["param_groups"]
    assert set(back["state"]) == {0, 1, 2, 3}  # int param ids survive
    with pytest.raises(TypeError, match="cannot store"):
        flatten_state({"x": object()}, {})


def test_roundtrip_restores_weights_optimizer_and_every_rng(tmp_path):
    model, opt, gens = _setup()
    _train(model, opt)
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    save_checkpoint(tmp_path, 3, {"model": model}, {"model": opt}, gens, {"data": {"epoch": 1}})
    expect = (random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=gens["noise"])))
    _train(model, opt)
    ref = {k: v.clone() for k, v in model.state_dict().items()}

    model2, opt2, gens2 = _setup(seed=9)  # different init and RNG: everything must come from the checkpoint
    state = load_checkpoint(checkpoint_dirs(tmp_path)[-1], {"model": model2}, {"model": opt2}, gens2)
    assert state["step"] == 3 and state["extra"] == {"data": {"epoch": 1}}
    got = (random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=gens2["noise"])))
    assert got == expect
    random.seed(3), np.random.seed(4), torch.manual_seed(5)  # same data draws as the first run's continuation
    random.random(), np.random.rand(), torch.rand(1)
    _train(model2, opt2)
    for k, v in model2.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_keep_last_and_tmp_folders_are_ignored(tmp_path):
    model, opt, gens = _setup()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"model": model}, {"model": opt}, gens, {}, keep_last=2)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_00000003", "step_00000004"]
    (tmp_path / "checkpoints" / "step_00000005.tmp").mkdir()  # a save killed half-way
    assert checkpoint_dirs(tmp_path)[-1].name == "step_00000004"


def test_truncated_checkpoint_is_a_clear_error_and_resume_falls_back(tmp_path):
    model, opt, gens = _setup()
    save_checkpoint(tmp_path, 1, {"model": model}, {"model": opt}, gens, {})
    good = {k: v.clone() for k, v in model.state_dict().items()}
    _train(model, opt)
    save_checkpoint(tmp_path, 2, {"model": model}, {"model": opt}, gens, {})
    bad = checkpoint_dirs(tmp_path)[-1] / "model.safetensors"
    bad.write_bytes(bad.read_bytes()[:-40])  # truncated

    model2, opt2, gens2 = _setup(seed=1)
    with pytest.raises(CheckpointError, match="model.safetensors.*truncated"):
        load_checkpoint(checkpoint_dirs(tmp_path)[-1], {"model": model2}, {"model": opt2}, gens2)
    with pytest.warns(UserWarning, match="skipping unreadable checkpoint.*falling back"):
        state = resume(tmp_path, {"model": model2}, {"model": opt2}, gens2)
    assert state["step"] == 1
    assert all(torch.equal(v, good[k]) for k, v in model2.state_dict().items())


def test_mismatched_model_is_refused(tmp_path):
    model, opt, gens = _setup()
    save_checkpoint(tmp_path, 1, {"model": model}, {"model": opt}, gens, {})
    other = torch.nn.Linear(4, 3)
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_checkpoint(checkpoint_dirs(tmp_path)[-1], {"model": other}, {}, gens)
    assert resume(tmp_path / "nothing", {"model": model}, {}, gens) is None
