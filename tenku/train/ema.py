"""Exponential moving average of a model's weights (the weights that samples and the exported model use)."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


def ema_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of `model` to average into."""
    return copy.deepcopy(model).requires_grad_(False)


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model; buffers are copied. Works on FSDP-sharded pairs alike."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)
