"""What the training loop (tenku/train/loop.py) sees of a task, and what every task shares.

A task builds its model (`build`) and computes a loss on a batch (`loss`); this base puts the model on the
device, makes the EMA copy, wraps it for DDP/FSDP and torch.compile, makes the AdamW optimizer and the two
named generators, builds the batches, and saves, resumes and exports. Optional hooks: `after_step` (e.g. a
discriminator step), `evaluate` (records to log), `before_checkpoint`, `postfix` (the progress bar).
VAETask (tenku/train/vae_task.py) and DiTTask (tenku/train/dit_task.py) are the two tasks.

All training randomness comes from two generators: `noise` (t, noise, text dropout, VAE posterior samples;
on the training device) and `cond` (frame-conditioning masks, VAE crop offsets; CPU), seeded from (seed, rank).
"""

from __future__ import annotations

import random
import sys
import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from tenku import precision
from tenku.precision import use_bf16
from tenku.train import distributed
from tenku.checkpoint import load_model_config, load_state, save_json
from tenku.train.compile import maybe_compile
from tenku.config import ModelConfig
from tenku.models.dit import DiT
from tenku.train.ema import ema_copy
from tenku.train.config import TrainConfig
from tenku.train.data import Batches
from tenku.train.state import checkpoint_dirs, resume, save_checkpoint
from tenku.models.vae import VideoVAE, fold_time_taps


@dataclass
class Context:
    """The processes, device and precision of one run: the same for every task."""

    info: distributed.DistInfo
    run: Path
    bf16: bool
    autocast: AbstractContextManager  # bf16 autocast, or nothing (fp32; FSDP casts through its own policy)

    @classmethod
    def start(cls, cfg: TrainConfig, resume_run: bool) -> Context:
        """Start the processes (torchrun's, or this one alone), seed python and numpy, check the run folder."""
        info = distributed.init(cfg.device, cfg.strategy)  # the one rank record: who, where, sharded or not
        if cfg.out is None:
            raise ValueError("no run folder: pass --out RUN_DIR")
        run, dev = Path(cfg.out), info.device
        bf16 = use_bf16(cfg.precision, dev)  # tenku/precision.py: "auto" = where the hardware multiplies bf16
        autocast = precision.autocast(dev, bf16 and not info.sharded)  # FSDP casts through its own policy
        random.seed(cfg.seed + info.rank)
        np.random.seed(cfg.seed + info.rank)
        if checkpoint_dirs(run) and not resume_run:  # every rank checks (RUN is shared), so all stop together
            raise ValueError(f"{run} already holds checkpoints: pass --resume to continue, or choose a new --out")
        return cls(info, run, bf16, autocast)


def init_vae(cfg: TrainConfig, mcfg: ModelConfig) -> VideoVAE:
    """The run's VAE, seeded by cfg.seed (so identical on every rank), with init_from's weights if given."""
    torch.manual_seed(cfg.seed)
    vae = VideoVAE(mcfg.vae)
    if cfg.init_from:
        # model_overrides {vae: {local_time: true}} on a full-time VAE: its time taps folded (a warm start).
        fold = load_model_config(cfg.init_from).vae.local_time != mcfg.vae.local_time
        load_state(vae, Path(cfg.init_from) / "vae.safetensors", adapt=fold_time_taps if fold else None)
    return vae


def init_dit(cfg: TrainConfig, mcfg: ModelConfig) -> DiT:
    """A DiT from the global RNG as it stands, with init_from's weights if given."""
    dit = DiT(mcfg.dit)
    if cfg.init_from:
        repatch = tuple(load_model_config(cfg.init_from).dit.patch_size) != tuple(mcfg.dit.patch_size)
        load_state(dit, Path(cfg.init_from) / "dit.safetensors", adapt=fresh_patch_layers if repatch else None)
    return dit


def fresh_patch_layers(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """init_from's DiT for one with another patch size (model_overrides {dit: {patch_size: ...}}): the blocks,
    text and time layers as trained; the patch embedding and the head, whose shapes follow the patch, as the new
    model initialised them (the head at zero, so the model starts from the blocks' features, not from noise)."""
    return {k: own[k] if k in PATCH_LAYERS and k in own and v.shape != own[k].shape else v for k, v in state.items()}


PATCH_LAYERS = ("patch_embedding.weight", "head.head.weight", "head.head.bias")  # shapes follow the patch size


class Task:
    """One model to train, as the loop sees it: `loss(batch, step)` plus what every task shares."""

    throughput = "samples_per_s"  # the name of the second rate in the log: frames or tokens per second

    def __init__(self, cfg: TrainConfig, mcfg: ModelConfig, ctx: Context, dataset=None, collate=None,
                 val_dataset=None):
        self.cfg, self.mcfg, self.ctx, self.device = cfg, mcfg, ctx, ctx.info.device
        # 1. The model (identical init on every rank), its EMA, the wrapped and compiled forward.
        self.model, self.frozen_vae = self.build()
        self.model.to(self.device).train()
        if self.frozen_vae is not None:
            self.frozen_vae.to(self.device)
        self.ema = ema_copy(self.model) if cfg.ema_decay > 0 else None
        self.net = distributed.wrap(self.model, ctx.info, cfg.strategy, ctx.bf16)
        if self.ema is not None and ctx.info.sharded:
            distributed.shard_fsdp(self.ema, ctx.info, ctx.bf16)  # sharded like the model: shard-local updates
        self.forward = maybe_compile(self.net, cfg.compile, self.device)  # `net` keeps DDP's no_sync
        # 2. Optimizer (the LR is set from the step every iteration, so the schedule resumes with it), RNG.
        self.params = self.trainable_parameters()
        self.optimizer = self.adamw(self.params, cfg.lr)
        self.modules = {"model": self.model, **({"ema": self.ema} if self.ema is not None else {})}
        self.optimizers = {"model": self.optimizer}
        self.generators = {"noise": torch.Generator(self.device).manual_seed(cfg.seed * 7919 + 1 + ctx.info.rank),
                           "cond": torch.Generator().manual_seed(cfg.seed * 7919 + 2 + ctx.info.rank)}
        # 3. Data.
        dataset, collate, self.val = self.data(dataset, collate, val_dataset)
        self.batches = Batches(dataset, collate, cfg, ctx.info)

    # What a task defines ----------------------------------------------------------------------------------

    def build(self) -> tuple[nn.Module, nn.Module | None]:
        """(the model to train, a frozen VAE or None)."""
        raise NotImplementedError

    def data(self, dataset, collate, val_dataset) -> tuple:
        """(training dataset with `.buckets`, collate, held-out dataset or None); given datasets win over cfg.data."""
        raise NotImplementedError

    def loss(self, batch: dict, step: int) -> tuple[torch.Tensor, int, int, dict]:
        """(loss, samples, frames or tokens, detached loss parts to log) for one micro-batch."""
        raise NotImplementedError

    def write_model(self, out: Path, weights: dict[str, torch.Tensor]) -> None:
        """Write the model directory from the trained (EMA) weights; rank 0."""
        raise NotImplementedError

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What the optimizer updates and the gradient clip measures."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def after_step(self, step: int) -> None:
        """After the model's optimizer step (e.g. the discriminator's own step)."""

    def evaluate(self, step: int, final: bool, clock: float) -> list[dict[str, float]]:
        """Records to log at this step (every rank calls; collectives allowed)."""
        return []

    def before_checkpoint(self) -> None:
        """Bring the saved state up to date (e.g. the VAE's latent statistics)."""

    def postfix(self, scalars: dict[str, float]) -> dict[str, str]:
        return {"loss": f"{scalars['loss']:.4f}", "smp/s": f"{scalars['samples_per_s']:.1f}"}

    # What every task shares -------------------------------------------------------------------------------

    def adamw(self, params, lr: float) -> torch.optim.Optimizer:
        cfg = self.cfg
        # fused: one kernel per parameter for the whole update, on CUDA and on the CPU (2.7x the CPU's default
        # per-op loop at world-xs size, bench/core.py --only optim); not for FSDP's sharded parameters.
        return torch.optim.AdamW(params, lr=lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay,
                                 fused=self.device.type in ("cuda", "cpu") and not self.ctx.info.sharded)

    @property
    def averaged(self) -> nn.Module:
        """The weights samples, evaluations and the export use: the EMA if there is one."""
        return self.ema if self.ema is not None else self.model

    def weights(self) -> dict[str, torch.Tensor]:
        """The averaged weights, unsharded on the CPU (a collective under FSDP: every rank calls)."""
        return distributed.full_state_dict(self.averaged, self.ctx.info)

    def kept_rng(self):
        """Evaluation inside this leaves every RNG as it was: the training run repeats with or without it."""
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    def sync(self, last_micro_batch: bool):
        """DDP all-reduces gradients on the last micro-batch of a step only."""
        if last_micro_batch or not (self.ctx.info.ddp and self.cfg.strategy == "ddp"):
            return nullcontext()
        return self.net.no_sync()

    def resume(self) -> tuple[int, float]:
        """Load the newest readable checkpoint: (its step, its training seconds); (0, 0.0) without one."""
        state = resume(self.ctx.run, self.modules, self.optimizers, self.generators, self.ctx.info)
        if state is None:
            if self.ctx.info.main:
                warnings.warn(f"--resume: no checkpoint in {self.ctx.run}; starting from step 0", stacklevel=3)
            return 0, 0.0
        self.batches.load_state_dict(state["extra"]["data"])
        if self.ctx.info.main:
            print(f"resumed from {state['path']} (step {state['step']})", file=sys.stderr)
        return state["step"], float(state["extra"].get("train_seconds", 0.0))

    def save(self, step: int, lr: float, clock: float) -> Path:
        """A checkpoint of everything needed to resume exactly (tenku/train/state.py); every rank calls."""
        self.before_checkpoint()
        cfg = self.cfg
        extra = {"data": self.batches.state_dict(), "lr": lr, "schedule": cfg.schedule, "task": cfg.task,
                 "train_seconds": clock}
        return save_checkpoint(self.ctx.run, step, self.modules, self.optimizers, self.generators, extra,
                               self.ctx.info, keep_last=cfg.keep_last)

    def export(self, out: Path) -> Path:
        """The model directory from the averaged weights (rank 0 writes; FSDP gathers first)."""
        info = self.ctx.info
        if not self.ctx.info.sharded:
            digest = distributed.check_replicas(self.model, info)  # DDP: every rank must hold the same weights
            if info.main:
                save_json(self.ctx.run / "weights_checksum.json",
                          {"model_sha256": digest, "world_size": info.world_size})
        weights = self.weights()
        if info.main:
            self.write_model(out, weights)
        return out
