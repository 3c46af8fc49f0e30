"""The task-free training loop and its small parts: a task the loop has never heard of trains, checkpoints
and exports through it; EMA, the LR setter and the log window."""

import json
import os
import signal
import time

import pytest
import torch
import torch.nn.functional as F

from tenku.checkpoint import load_tensors, save_tensors
from tenku.train.ema import ema_copy, ema_update
from tenku.train.run_guard import StopSignals
from tenku.train.loop import loop
from tenku.train.config import resolve
from tenku.train.log import Window
from tenku.train.schedule import set_lr
from tenku.train.task import Context, Task
from tenku.train import distributed


class Points(torch.utils.data.Dataset):
    """Points on the line y = 3x - 1."""

    def __init__(self, n=16):
        self.x = torch.linspace(-1, 1, n)
        self.buckets = [0] * n

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i : i + 1], "y": 3 * self.x[i : i + 1] - 1}  # (1,), (1,)


class LineTask(Task):
    """Fit a line with one linear layer: neither a VAE nor a DiT."""

    throughput = "points_per_s"

    def build(self):
        torch.manual_seed(self.cfg.seed)
        return torch.nn.Linear(1, 1), None

    def data(self, dataset, collate, val_dataset):
        return Points(), None, None

    def loss(self, batch, step):
        pred = self.forward(batch["x"])  # (B, 1)
        return F.mse_loss(pred, batch["y"]), len(pred), len(pred), {}

    def write_model(self, out, weights):
        out.mkdir(parents=True, exist_ok=True)
        save_tensors(out / "line.safetensors", weights)


def test_a_new_task_trains_checkpoints_and_exports_through_the_loop(tmp_path):
    cfg = resolve("tiny-test", sets=["steps=100", "lr=0.1", "warmup_steps=1", "min_lr_ratio=0.01", "ema_decay=0.5",
                                     "batch_size=4", "checkpoint_every=50"], out=str(tmp_path))
    task = LineTask(cfg, cfg.model_config(), Context.start(cfg, resume_run=False))
    out = loop(task, start=0, clock=0.0, stop=StopSignals())
    weights = load_tensors(out / "line.safetensors")  # the EMA's
    assert weights["weight"].item() == pytest.approx(3.0, abs=0.1) and weights["bias"].item() == pytest.approx(-1, abs=0.1)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [d["step"] for d in lines] == list(range(1, 101)) and lines[-1]["loss"] < 0.01 * lines[0]["loss"]
    assert "points_per_s" in lines[0] and lines[-1]["train_seconds"] > 0
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000050", "step_00000100"]


def test_snapshots_keep_the_averaged_weights_every_n_steps(tmp_path):
    """snapshot_every: a model directory of the EMA weights every N steps, kept when checkpoints are pruned."""
    cfg = resolve("tiny-test", sets=["steps=30", "lr=0.1", "warmup_steps=1", "ema_decay=0.5", "batch_size=4",
                                     "checkpoint_every=10", "keep_last=1", "snapshot_every=10"], out=str(tmp_path))
    task = LineTask(cfg, cfg.model_config(), Context.start(cfg, resume_run=False))
    out = loop(task, start=0, clock=0.0, stop=StopSignals())
    snaps = sorted((tmp_path / "snapshots").iterdir())
    assert [p.name for p in snaps] == ["step_00000010", "step_00000020", "step_00000030"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_00000030"]
    w = [load_tensors(p / "line.safetensors")["weight"] for p in snaps]
    assert torch.equal(w[-1], load_tensors(out / "line.safetensors")["weight"]) and not torch.equal(w[0], w[-1])


class PausedLineTask(LineTask):
    """Step 5 lasts a second; with `pause`, the process is continued (SIGCONT) during it, as after a SIGSTOP."""

    pause = True

    def loss(self, batch, step):
        if step == 5:
            time.sleep(1.0)
            if self.pause:
                os.kill(os.getpid(), signal.SIGCONT)
        return super().loss(batch, step)


@pytest.mark.parametrize("pause", [True, False])
def test_a_paused_step_is_not_booked_as_training_time(tmp_path, pause):
    cfg = resolve("tiny-test", sets=["steps=8", "batch_size=4", "checkpoint_every=100"], out=str(tmp_path))
    task = PausedLineTask(cfg, cfg.model_config(), Context.start(cfg, resume_run=False))
    task.pause = pause
    with StopSignals() as stop:
        loop(task, start=0, clock=0.0, stop=stop)
    booked = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()][-1]["train_seconds"]
    assert (booked < 0.5) if pause else (booked >= 1.0)  # the slow step counts only when it was not a pause


def test_ema_update_averages_parameters_and_copies_buffers():
    model = torch.nn.BatchNorm1d(3)
    ema = ema_copy(model)
    assert not any(p.requires_grad for p in ema.parameters())
    with torch.no_grad():
        model.weight.fill_(3.0)
        model.running_mean.fill_(5.0)
    ema_update(ema, model, decay=0.75)
    assert torch.allclose(ema.weight, torch.full((3,), 0.75 * 1.0 + 0.25 * 3.0))
    assert torch.equal(ema.running_mean, model.running_mean)


def test_set_lr_sets_every_group_and_window_means():
    cfg = resolve("tiny-test", sets=["lr=1.0", "warmup_steps=4"])
    opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]},
                           {"params": [torch.zeros(1, requires_grad=True)]}], lr=0.0)
    assert set_lr(opt, 2, cfg) == 0.5 and [g["lr"] for g in opt.param_groups] == [0.5, 0.5]
    window = Window(torch.device("cpu"))
    for loss in (1.0, 3.0):  # one step of two micro-batches, then a second step
        window.add(torch.tensor(loss), {"rec": torch.tensor(2 * loss)}, samples=2, tokens=10, grad_accum=2)
    window.steps = 1
    window.add(torch.tensor(6.0), {"rec": torch.tensor(0.0)}, samples=2, tokens=10, grad_accum=1)
    window.steps = 2
    info = distributed.DistInfo(False, 0, 0, 1, torch.device("cpu"))
    s = window.scalars(info, lr=0.5, clock=1.0, throughput="tokens_per_s", grad_norm=torch.tensor(0.25))
    assert s["loss"] == pytest.approx((2.0 + 6.0) / 2) and s["rec"] == pytest.approx(2.0)
    assert s["lr"] == 0.5 and s["grad_norm"] == 0.25 and s["tokens_per_s"] > 0 and s["samples_per_s"] > 0
