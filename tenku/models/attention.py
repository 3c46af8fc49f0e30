"""Attention for the DiT and the VAE: one function that picks the faster kernel for the shape and device."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# On a CPU, attention whose score matrix (N x L per head) is at most this size runs as plain matmuls and a softmax:
# there the flash kernel with its backward costs 2-6x more in bf16, about 5% more in fp32 (bench/core.py --only attention),
# and inductor fuses the softmax into its neighbours (the world-xs training step, compiled: 1.5x in bf16, 1.07x in
# fp32). Longer sequences (and CUDA) take scaled_dot_product_attention, which never holds the whole score matrix.
EXPLICIT_ATTENTION_MAX = {torch.float32: 128 * 128, torch.bfloat16: 512 * 512, torch.float16: 512 * 512}


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(hd)) v. q (B, heads, N, hd); k, v (B, heads, L, hd); mask broadcast to (B, heads, N, L),
    True = attend. A query with no key to attend to gets zeros, as scaled_dot_product_attention gives it."""
    if q.device.type == "cpu" and q.shape[-2] * k.shape[-2] <= explicit_limit(q.dtype):
        return explicit_attention(q, k, v, mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def explicit_limit(dtype: torch.dtype) -> int:
    """The largest N x L that runs explicitly on a CPU. fp32 eager inference keeps the one fused call: at the
    sampler's batch of 2 the explicit path's extra small ops cost 4-6% of a DiT forward."""
    if dtype == torch.float32 and not (torch.is_grad_enabled() or torch.compiler.is_compiling()):
        return 0
    return EXPLICIT_ATTENTION_MAX.get(dtype, 0)


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The same as plain matmuls and a softmax, holding the (B, heads, N, L) scores (and their gradient)."""
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (B, heads, N, L)
    if mask is None:
        return scores.softmax(-1).to(v.dtype) @ v  # (B, heads, N, hd)
    probs = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    probs = probs.masked_fill(~mask.any(-1, keepdim=True), 0.0)  # all-masked rows: 0, not softmax's NaN
    return probs.to(v.dtype) @ v  # (B, heads, N, hd)
