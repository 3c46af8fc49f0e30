"""Training logs on rank 0: a tqdm bar, TensorBoard scalars and metrics.jsonl (one JSON line per record), and
the window of steps whose losses one log line averages."""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import torch

from tenku.train import distributed
from tenku.checkpoint import atomic_write
from tenku.train.run_guard import read_metrics


class Log:
    """tqdm bar + TensorBoard + metrics.jsonl, on rank 0 only."""

    def __init__(self, cfg, run: Path, start: int, main: bool):
        self.main, self.file, self.writer, self.bar = main, run / "metrics.jsonl", None, None
        if not main:
            return
        # A resumed run rewrites the lines logged after its checkpoint (the killed run logged them too).
        if self.file.exists():
            keep = [json.dumps(r) + "\n" for r in read_metrics(self.file) if r["step"] <= start]  # torn lines dropped

            def write(tmp):
                with open(tmp, "w") as f:
                    f.writelines(keep)

            atomic_write(self.file, write)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run / "tensorboard"), purge_step=start + 1)
        except ImportError:
            warnings.warn("tensorboard is not installed: no TensorBoard scalars", stacklevel=2)
        if cfg.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=cfg.steps, initial=start, desc=f"train {cfg.task}", unit="step",
                            dynamic_ncols=True, file=sys.stderr)

    def __call__(self, step: int, scalars: dict[str, float], postfix: dict[str, str] | None = None) -> None:
        if not self.main:
            return
        with open(self.file, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        if self.writer is not None:
            for k, v in scalars.items():
                self.writer.add_scalar(k, v, step)
        if self.bar is not None and postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


class Window:
    """The steps since the last log line: losses summed on the device (no sync per step), samples and tokens."""

    def __init__(self, device: torch.device):
        self.loss, self.parts = torch.zeros((), device=device), {}
        self.steps = self.samples = self.tokens = 0
        self.t0 = time.perf_counter()

    def add(self, loss: torch.Tensor, parts: dict, samples: int, tokens: int, grad_accum: int) -> None:
        """One micro-batch: its loss and parts count 1/grad_accum of a step."""
        self.loss += loss.detach() / grad_accum
        for k, v in parts.items():
            self.parts[k] = self.parts.get(k, 0.0) + v / grad_accum
        self.samples += samples
        self.tokens += tokens

    def scalars(self, info: distributed.DistInfo, lr: float, clock: float, throughput: str,
                grad_norm: torch.Tensor | None) -> dict[str, float]:
        """Means over the window and over ranks (a collective: every rank calls), rates over all ranks."""
        dt = max(time.perf_counter() - self.t0, 1e-9)
        world = info.world_size
        out = {"loss": float(distributed.mean_across(info, self.loss / self.steps)), "lr": lr, "train_seconds": clock,
               "samples_per_s": self.samples * world / dt, throughput: self.tokens * world / dt}
        for k, v in self.parts.items():
            out[k] = float(distributed.mean_across(info, v / self.steps))
        if grad_norm is not None:
            out["grad_norm"] = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
        return out
