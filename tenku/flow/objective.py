"""Rectified flow: the one place that defines Tenku's time convention.

    t in [0, 1];  t = 0 is clean data, t = 1 is pure Gaussian noise.
    x_t = (1 - t) * x0 + t * noise            (a straight line from data to noise)
    v   = dx_t/dt = noise - x0                (what the DiT predicts)
    sampling integrates dx/dt = v from t = 1 down to t = 0.

Timesteps are per latent frame, shape (B, T'): frames the user gives (an image, the video being extended)
sit at t = 0 and stay clean, while the rest are generated. This is the whole conditioning mechanism.
"""

from __future__ import annotations

import math

import torch

from tenku.config import FlowConfig


def per_frame(t: torch.Tensor, frames: int) -> torch.Tensor:
    """Broadcast a timestep of shape (B,) or (B, T') to (B, T')."""
    if t.ndim == 1:
        return t[:, None].expand(-1, frames)
    if t.ndim != 2 or t.shape[1] != frames:
        raise ValueError(f"timesteps must be (B,) or (B, {frames}), got {tuple(t.shape)}")
    return t


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t noise, with t (B,) or (B, T') broadcast over (B, C, T', h, w)."""
    tt = per_frame(t, x0.shape[2])[:, None, :, None, None].to(x0.dtype)  # (B, 1, T', 1, 1)
    return (1 - tt) * x0 + tt * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return noise - x0


def shift_for_tokens(n_tokens: int, cfg: FlowConfig) -> float:
    """Timestep shift that grows with the latent token count (resolution x duration).

    More tokens carry more redundant signal, so the same t destroys relatively less information; shifting
    t toward noise keeps the difficulty constant. SD3's resolution argument gives shift ~ sqrt(n / n_ref).
    """
    shift = cfg.base_shift * math.sqrt(max(n_tokens, 1) / cfg.shift_ref_tokens)
    return float(min(max(shift, 1.0), cfg.max_shift))


def shift_t(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Warp t toward noise for shift > 1; keeps 0 -> 0 and 1 -> 1."""
    return shift * t / (1 + (shift - 1) * t)


def sample_t(batch: int, cfg: FlowConfig, n_tokens: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """Training timesteps: logit-normal (dense in the middle, where learning is hardest), then shifted. (B,)"""
    z = torch.randn(batch, generator=generator, device=device) * cfg.logit_std + cfg.logit_mean
    return shift_t(torch.sigmoid(z), shift_for_tokens(n_tokens, cfg))


def sampling_schedule(steps: int, shift: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Timesteps for sampling, from 1 (noise) to 0 (data): (steps + 1,)."""
    return shift_t(torch.linspace(1.0, 0.0, steps + 1, device=device), shift)


def given_t(cfg: FlowConfig) -> float:
    """The noise level at which sampling holds given frames: the middle of what training drew them at."""
    return cfg.given_noise / 2


def null_text(batch: int, length: int, dim: int, device="cpu", dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The unconditional text used for guidance: zero token states with only the first position valid.

    Encoder-agnostic (no need to encode ""), and the DiT learns what this constant token means.
    """
    text = torch.zeros(batch, length, dim, device=device, dtype=dtype)  # (B, L, D)
    mask = torch.zeros(batch, length, dtype=torch.bool, device=device)  # (B, L)
    mask[:, 0] = True
    return text, mask


def drop_text(text: torch.Tensor, mask: torch.Tensor, p: float,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each sample's text by the null text with probability p (classifier-free guidance training)."""
    if p <= 0:
        return text, mask
    B, L, D = text.shape
    drop = torch.rand(B, generator=generator, device=text.device) < p  # (B,)
    null, null_mask = null_text(B, L, D, text.device, text.dtype)
    text = torch.where(drop[:, None, None], null, text)
    mask = torch.where(drop[:, None], null_mask, mask)
    return text, mask


def flow_loss(pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared velocity error over the frames that count. frame_mask (B, T') bool, True = counts."""
    err = (pred.float() - target.float()).pow(2).mean(dim=(1, 3, 4))  # (B, T')
    if frame_mask is None:
        return err.mean()
    w = frame_mask.to(err.dtype)
    return (err * w).sum() / w.sum().clamp(min=1.0)


def training_loss(dit, x0: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor, cfg: FlowConfig,
                  cond_mask: torch.Tensor | None = None, per_frame_t: bool = False,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """One rectified-flow training loss.

    x0: (B, C, T', h, w) normalised latents; text (B, L, D), text_mask (B, L) bool.
    cond_mask: (B, T') bool, True = a frame given clean (t = 0), excluded from the loss.
    per_frame_t: an independent noise level per latent frame (diffusion forcing) instead of one per clip.
    """
    B, C, T, h, w = x0.shape
    core = getattr(dit, "module", dit)  # DDP hides the model's methods behind .module
    n_tokens = core.num_tokens(T, h, w) if hasattr(core, "num_tokens") else T * h * w
    # 1. Timesteps: per clip or per frame; given frames pinned to 0.
    if per_frame_t:
        t = sample_t(B * T, cfg, n_tokens, generator, x0.device).view(B, T)  # (B, T')
    else:
        t = sample_t(B, cfg, n_tokens, generator, x0.device)[:, None].expand(B, T).clone()  # (B, T')
    if cond_mask is not None and cfg.given_noise > 0:  # given frames lightly noised (FlowConfig.given_noise)
        t_given = cfg.given_noise * torch.rand(B, 1, generator=generator, device=x0.device)  # (B, 1)
        t = torch.where(cond_mask, t_given.expand(B, T), t)
    elif cond_mask is not None:
        t = t.masked_fill(cond_mask, 0.0)
    # 2. Noisy input and target.
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_t = interpolate(x0, noise, t)  # (B, C, T', h, w)
    target = velocity_target(x0, noise)
    # 3. Guidance dropout, prediction, loss on the generated frames only.
    text, text_mask = drop_text(text, text_mask, cfg.text_dropout, generator)
    pred = dit(x_t, t, text, text_mask)  # (B, C, T', h, w)
    return flow_loss(pred, target, None if cond_mask is None else ~cond_mask)
