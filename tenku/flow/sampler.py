"""ODE solvers for rectified flow, with classifier-free guidance and per-frame conditioning.

Integrates dx/dt = v(x, t) from t = 1 (noise) to t = 0 (data) over `flow.sampling_schedule`. Frames marked
in `cond_mask` are given: they are held at their clean latents with t = 0 at every model call, so they stay
exactly as given (bit-for-bit) while the others are generated around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from tenku import flow

SAMPLERS = ("euler", "heun", "multistep")


@dataclass
class Conditioning:
    """Known latent frames. latents (B, C, T', h, w) (values outside mask ignored); mask (B, T') bool."""

    latents: torch.Tensor
    mask: torch.Tensor
    t: float = 0.0  # the noise level the model sees the given frames at (flow.given_t); the output stays clean
    noise: torch.Tensor | None = None  # (B, C, T', h, w) fixed noise for t > 0

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        m = self.mask[:, None, :, None, None]  # (B, 1, T', 1, 1)
        return torch.where(m, self.latents.to(x.dtype), x)

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """x with the given frames as the model sees them: clean, or at noise level t with the fixed noise."""
        if self.t == 0.0:
            return self.apply(x)
        noisy = flow.interpolate(self.latents.to(x.dtype), self.noise.to(x.dtype), torch.tensor([self.t], device=x.device))
        return torch.where(self.mask[:, None, :, None, None], noisy, x)


class GuidedVelocity:
    """v(x, t) with classifier-free guidance: v_u + g (v_c - v_u), one batched model call."""

    def __init__(self, dit, text, text_mask, guidance: float, cond: Conditioning | None = None,
                 null_text: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.dit, self.guidance, self.cond = dit, guidance, cond
        self.text, self.text_mask = text, text_mask
        if guidance != 1.0:
            B, L, D = text.shape
            null, null_mask = null_text if null_text is not None else flow.null_text(B, L, D, text.device, text.dtype)
            self.text = torch.cat([text, null])  # (2B, L, D)
            self.text_mask = torch.cat([text_mask, null_mask])

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        B, T = x.shape[0], x.shape[2]
        tt = torch.full((B, T), float(t), device=x.device)  # (B, T')
        if self.cond is not None:
            x = self.cond.model_input(x)
            tt = tt.masked_fill(self.cond.mask, self.cond.t)
        # .to(x.dtype): under bf16 autocast the DiT answers in bf16; guidance and the steps stay in x's precision
        if self.guidance == 1.0:
            v = self.dit(x, tt, self.text, self.text_mask).to(x.dtype)
        else:
            v_c, v_u = self.dit(torch.cat([x, x]), torch.cat([tt, tt]), self.text, self.text_mask).to(x.dtype).chunk(2)
            v = v_u + self.guidance * (v_c - v_u)
        if self.cond is not None:
            # Given frames do not move.
            v = v.masked_fill(self.cond.mask[:, None, :, None, None], 0.0)
        return v


@torch.no_grad()
def sample(velocity: Callable[[torch.Tensor, float], torch.Tensor], noise: torch.Tensor, steps: int, shift: float,
           method: str = "euler", cond: Conditioning | None = None, t_start: float = 1.0,
           callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Integrate from t_start (1 = pure noise; < 1 for SDEdit-style editing, where `noise` is x_{t_start}) to 0.

    Returns x_0 with the conditioning frames exactly equal to `cond.latents`.
    """
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; choose from {SAMPLERS}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    ts = flow.sampling_schedule(steps, shift).tolist()
    if t_start < 1.0:
        ts = [t_start * t for t in ts]  # the same shape of schedule squeezed into [0, t_start]
    x = noise if cond is None else cond.apply(noise)
    prev_v = None
    for i in range(steps):
        t, t_next = ts[i], ts[i + 1]
        dt = t_next - t  # negative: we walk toward data
        v = velocity(x, t)
        if method == "heun" and t_next > 0:
            # Trapezoid rule: average the slope here and at the Euler prediction (2 model calls per step).
            x_pred = x + dt * v
            v_next = velocity(x_pred if cond is None else cond.apply(x_pred), t_next)
            x = x + dt * 0.5 * (v + v_next)
        elif method == "multistep" and prev_v is not None:
            # Adams-Bashforth 2 on a non-uniform grid: second order for one model call per step.
            r = dt / prev_dt
            x = x + dt * ((1 + 0.5 * r) * v - 0.5 * r * prev_v)
        else:
            x = x + dt * v
        prev_v, prev_dt = v, dt
        if cond is not None:
            x = cond.apply(x)
        if callback is not None:
            callback(i + 1, steps)
    return x
