"""Which latent frames a DiT training sample is given clean: one model learns every conditioning mode.

The sampler gives frames the same way at generation time (tenku/conditioning.py); training draws a mode per
sample so that text-to-video, image-to-video, extension both ways and connecting are all learnt at once.
"""

from __future__ import annotations

import torch

# Frame-conditioning modes drawn per sample (TrainConfig.cond_probs weighs them).
COND_MODES = ("none", "first", "first_k", "last", "first_last", "middle")


def random_cond_mask(batch: int, frames: int, probs: dict[str, float], generator: torch.Generator | None = None) -> torch.Tensor:
    """Per sample, which latent frames are given clean (True).

    Modes: none (text-to-video), first (image-to-video), first_k (extend forward), last (last frames given:
    extend backward / last image), first_last (connect / interpolate), middle (a span inside the clip).
    At least one frame is always generated; a mode the clip is too short for falls back to none. (B, T') bool.
    """
    weights = torch.tensor([float(probs.get(m, 0.0)) for m in COND_MODES])
    modes = torch.multinomial(weights / weights.sum(), batch, replacement=True, generator=generator)  # (B,)
    u = torch.rand(batch, 2, generator=generator)  # (B, 2) span sizes / positions
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    for i in range(batch):
        mode = COND_MODES[int(modes[i])]
        k = 1 + int(u[i, 0] * (frames - 1)) if frames > 1 else 0  # 1 .. T'-1 frames
        if frames < 2 or mode == "none":
            continue
        if mode == "first":
            mask[i, 0] = True
        elif mode == "first_k":
            mask[i, :k] = True
        elif mode == "last":
            mask[i, frames - k:] = True
        elif mode == "first_last" and frames >= 3:
            mask[i, 0] = mask[i, -1] = True
        elif mode == "middle" and frames >= 3:
            k = min(k, frames - 2)
            start = 1 + int(u[i, 1] * (frames - 1 - k))  # the span stays strictly inside
            mask[i, start : start + k] = True
    return mask
