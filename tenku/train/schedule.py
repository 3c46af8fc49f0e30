"""The learning rate as a function of the optimizer step: linear warm-up, then cosine decay or constant.

A function of the step alone, so a resumed run continues the schedule from its checkpoint's step.
"""

from __future__ import annotations

import math

import torch


def lr_at(step: int, cfg) -> float:
    """Learning rate for optimizer step `step` (1-based): linear warm-up, then cosine to min_lr_ratio * lr or constant.

    `cfg` is a TrainConfig (lr, warmup_steps, schedule, steps, min_lr_ratio).
    """
    if step <= cfg.warmup_steps:
        return cfg.lr * step / max(1, cfg.warmup_steps)
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, step: int, cfg) -> float:
    """Set every parameter group's learning rate for `step`; returns it."""
    lr = lr_at(step, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
