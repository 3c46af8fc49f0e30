"""Training checkpoints: optimizer/RNG round trips, keep-last, atomic folders, truncated files and fallback."""

import json
import random

import numpy as np
import pytest
import torch

from tenku.checkpoint import CheckpointError
from tenku.checkpoint import load_json, save_json, save_tensors
from tenku.train.state import (checkpoint_dirs, load_checkpoint, optimizer_state, resume, save_checkpoint,
                               set_optimizer_state)


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


def test_optimizer_state_is_named_tensors_and_json():
    model, opt, _ = _setup()
    _train(model, opt)
    tensors, rest = optimizer_state(model, opt)
    assert all(torch.is_tensor(t) for t in tensors.values()) and "state.0.weight.exp_avg" in tensors
    assert rest["param_groups.2.bias.betas"] == [0.9, 0.99]  # JSON-able: the tuple is a list
    model2, opt2, _ = _setup(seed=1)
    set_optimizer_state(model2, opt2, tensors, json.loads(json.dumps(rest)))
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]  # betas a tuple again
    assert all(torch.equal(a["state"][i][k], b["state"][i][k]) for i in a["state"] for k in a["state"][i])


def _legacy_index(obj, tensors, prefix=""):
    """The format-1 optimizer index (nested, keyed by param ids), as Tenku wrote it before format 2."""
    if torch.is_tensor(obj):
        tensors[prefix] = obj
        return {"tensor": prefix}
    if isinstance(obj, dict):
        return {"dict": [[k, _legacy_index(v, tensors, f"{prefix}.{k}" if prefix else str(k))] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {type(obj).__name__: [_legacy_index(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    return {"value": obj}


def test_format_1_checkpoint_still_resumes(tmp_path):
    model, opt, gens = _setup()
    _train(model, opt)
    path = save_checkpoint(tmp_path, 3, {"model": model}, {"model": opt}, gens, {})
    state, tensors = load_json(path / "state.json"), {}
    state["format"], state["optimizers"]["model"] = 1, _legacy_index(opt.state_dict(), tensors)
    save_tensors(path / "optim_model.safetensors", tensors)
    save_json(path / "state.json", state)
    model2, opt2, gens2 = _setup(seed=1)
    assert load_checkpoint(path, {"model": model2}, {"model": opt2}, gens2)["step"] == 3
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    assert torch.equal(opt2.state_dict()["state"][3]["exp_avg_sq"], opt.state_dict()["state"][3]["exp_avg_sq"])


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


def test_optimizer_of_another_model_is_refused_before_anything_changes(tmp_path):
    model, opt, gens = _setup()
    _train(model, opt)
    save_checkpoint(tmp_path, 1, {"model": model}, {"model": opt}, gens, {})
    wide = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 2))
    wrong = torch.optim.AdamW(list(wide.parameters())[:2], lr=1e-2)  # optimizes half the model
    before = {k: v.clone() for k, v in wide.state_dict().items()}
    with pytest.raises(CheckpointError, match="optim_model.safetensors does not match the optimizer"):
        load_checkpoint(checkpoint_dirs(tmp_path)[-1], {"model": wide}, {"model": wrong}, gens)
    assert all(torch.equal(v, before[k]) for k, v in wide.state_dict().items())
