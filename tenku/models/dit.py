"""Diffusion transformer on spacetime patches of the video latent (the Wan 2.1 block layout).

Module names follow Wan 2.1's `WanModel` (patch_embedding, text_embedding, time_embedding,
time_projection, blocks.N.{norm1, self_attn, norm3, cross_attn, norm2, ffn, modulation}, head) so that
published weights can be mapped in by renaming keys. Two deliberate differences: timesteps are per latent
frame, shape (B, T') (so given frames can sit at t = 0), and the modulation path is zero-initialised
(adaLN-Zero), so a new model starts as the identity plus a zero output.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from tenku.config import DiTConfig
from tenku.models.attention import attention


# ----------------------------------------------------------------------------- embeddings

def sinusoidal(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(N,) timesteps in [0, 1] -> (N, dim) features. Scaled by 1000 so t spans the usual range of phases."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]  # (N, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def rope_axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Real dims of the (t, h, w) rotary parts; Wan 2.1's split (head dim 128 -> 44, 42, 42)."""
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def rope_freqs(grid: tuple[int, int, int], head_dim: int, theta: float, device) -> torch.Tensor:
    """3D rotary table for a (T', H', W') token grid: (cos, sin) of each pair's angle, shape (N, head_dim / 2, 2)."""
    angles = []
    for axis, (n, d) in enumerate(zip(grid, rope_axis_dims(head_dim))):
        inv = 1.0 / theta ** (torch.arange(0, d, 2, device=device, dtype=torch.float64) / d)  # (d/2,)
        a = torch.arange(n, device=device, dtype=torch.float64)[:, None] * inv[None]  # (n, d/2)
        shape = [1, 1, 1, a.shape[1]]
        shape[axis] = n
        angles.append(a.view(shape).expand(*grid, -1))  # (T', H', W', d/2)
    ang = torch.cat(angles, dim=-1).reshape(-1, head_dim // 2)  # (N, head_dim/2)
    return torch.stack([ang.cos(), ang.sin()], dim=-1).float()  # (N, head_dim/2, 2)


def apply_rope(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (x[2i], x[2i+1]) by their angle, as Wan does. x (B, heads, N, hd).

    Real arithmetic, not complex numbers: the same rotation, but plain elementwise ops that the compiler fuses
    with the QK norm, and no complex tensors in the backward pass.
    """
    cos, sin = rope.unbind(-1)  # (N, hd/2) each
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)  # (B, heads, N, hd/2) each
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (B, heads, N, hd/2, 2)
    return out.flatten(-2).to(x.dtype)


# ----------------------------------------------------------------------------- layers

class Attention(nn.Module):
    """Multi-head attention with QK RMSNorm across all heads (Wan's norm_q/norm_k) and optional 3D RoPE."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = True, eps: float = 1e-6):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = nn.RMSNorm(dim, eps=eps) if qk_norm else nn.Identity()  # torch's: x / sqrt(mean(x^2) + eps)
        self.norm_k = nn.RMSNorm(dim, eps=eps) if qk_norm else nn.Identity()

    def forward(self, x, context=None, rope=None, mask=None):
        B, N, D = x.shape
        if not all(type(m) is nn.Linear for m in (self.q, self.k, self.v)):
            # Adapters (LoRA, tenku/models/lora.py) wrap the projections: call them, do not bypass them.
            kv = x if context is None else context
            q, k, v = self.q(x), self.k(kv), self.v(kv)
        elif context is None:
            # Self-attention: one fused matmul for q, k, v (three Linear modules kept for weight compatibility).
            w = torch.cat([self.q.weight, self.k.weight, self.v.weight])  # (3D, D)
            bias = torch.cat([self.q.bias, self.k.bias, self.v.bias])
            q, k, v = F.linear(x, w, bias).chunk(3, dim=-1)  # 3 x (B, N, D)
        else:
            q = self.q(x)  # (B, N, D)
            w = torch.cat([self.k.weight, self.v.weight])
            bias = torch.cat([self.k.bias, self.v.bias])
            k, v = F.linear(context, w, bias).chunk(2, dim=-1)  # 2 x (B, L, D)
        # The norms in fp32 (as Wan's): under bf16 autocast q, k arrive in bf16 and the norm weights are fp32.
        q, k = self.norm_q(q.float()).to(v.dtype), self.norm_k(k.float()).to(v.dtype)
        q, k, v = (z.unflatten(-1, (self.num_heads, -1)).transpose(1, 2) for z in (q, k, v))  # (B, heads, *, hd)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        out = attention(q, k, v, mask)  # (B, heads, N, hd)
        return self.o(out.transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    """Wan 2.1 block: modulated self-attention, cross-attention to text, modulated feed-forward."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d = cfg.dim
        self.norm1 = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.self_attn = Attention(d, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm3 = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=True) if cfg.cross_attn_norm else nn.Identity()
        self.cross_attn = Attention(d, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm2 = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, d))
        self.modulation = nn.Parameter(torch.zeros(1, 6, d))  # per-block learned bias on the shared time MLP

    def forward(self, x, e, context, context_mask, rope, frames: int):
        # x (B, N, D) with N = frames * S; e (B, frames, 6, D): one modulation per (temporal patch) frame.
        B, N, D = x.shape
        e = (e + self.modulation[:, None]).unsqueeze(3)  # (B, F, 6, 1, D)
        shift1, scale1, gate1, shift2, scale2, gate2 = e.unbind(2)  # each (B, F, 1, D)

        def modulate(h, shift, scale):
            return torch.addcmul(shift, h.view(B, frames, -1, D), 1 + scale).view(B, N, D)

        def gated(h, gate):
            return (h.view(B, frames, -1, D) * gate).view(B, N, D)

        # 1. Self-attention over all spacetime tokens.
        x = x + gated(self.self_attn(modulate(self.norm1(x), shift1, scale1), rope=rope), gate1)
        # 2. Cross-attention to the text tokens.
        x = x + self.cross_attn(self.norm3(x), context=context, mask=context_mask)
        # 3. Feed-forward.
        x = x + gated(self.ffn(modulate(self.norm2(x), shift2, scale2)), gate2)
        return x


class Head(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(cfg.dim, cfg.out_channels * math.prod(cfg.patch_size))
        self.modulation = nn.Parameter(torch.zeros(1, 2, cfg.dim))

    def forward(self, x, e, frames: int):
        # x (B, N, D); e (B, F, D) the time embedding per frame.
        B, N, D = x.shape
        shift, scale = (e[:, :, None] + self.modulation[:, None]).unsqueeze(3).unbind(2)  # (B, F, 1, D) each
        h = self.norm(x).view(B, frames, -1, D) * (1 + scale) + shift
        return self.head(h.view(B, N, D))  # (B, N, C * pt * ph * pw)


# ----------------------------------------------------------------------------- model

class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        # A Conv3d with stride = kernel = patch is a linear map on patches; we keep the Conv3d parameter
        # layout (Wan's) but run it as one matmul, which is much faster on CPUs.
        self.patch_embedding = nn.Conv3d(cfg.in_channels, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)])
        self.head = Head(cfg)
        self._rope_cache: dict = {}
        self.reset_parameters()

    def reset_parameters(self):
        if self.patch_embedding.weight.is_meta:  # built to take a file's weights: a random draw would only cost
            return  # time (normal_ on meta imports torch._dynamo, ~0.6 s of a fresh process)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embedding.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embedding.bias)
        for m in list(self.text_embedding) + list(self.time_embedding):
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
        # adaLN-Zero: zero gates make every block the identity, and a zero head makes the output zero.
        nn.init.zeros_(self.time_projection[1].weight)
        nn.init.zeros_(self.time_projection[1].bias)
        nn.init.zeros_(self.head.head.weight)
        nn.init.zeros_(self.head.head.bias)

    # ---- shapes
    def grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        pt, ph, pw = self.cfg.patch_size
        if frames % pt or height % ph or width % pw:
            raise ValueError(
                f"latent size (T'={frames}, h={height}, w={width}) is not divisible by the patch size {self.cfg.patch_size}")
        return frames // pt, height // ph, width // pw

    def num_tokens(self, frames: int, height: int, width: int) -> int:
        return math.prod(self.grid(frames, height, width))

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T', h, w) -> (B, N, C * pt * ph * pw), tokens in (t, h, w) order, features in (c, pt, ph, pw)."""
        B, C, T, H, W = x.shape
        pt, ph, pw = self.cfg.patch_size
        x = x.view(B, C, T // pt, pt, H // ph, ph, W // pw, pw)
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, T'', H'', W'', C, pt, ph, pw)
        return x.reshape(B, -1, C * pt * ph * pw)

    def unpatchify(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """(B, N, pt * ph * pw * C) head output (Wan's (p, q, r, c) order) -> (B, C, T', h, w)."""
        B = x.shape[0]
        pt, ph, pw = self.cfg.patch_size
        C = self.cfg.out_channels
        x = x.view(B, *grid, pt, ph, pw, C)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (B, C, T'', pt, H'', ph, W'', pw)
        return x.reshape(B, C, grid[0] * pt, grid[1] * ph, grid[2] * pw)

    def rope(self, grid, device):
        key = (grid, str(device))
        if key not in self._rope_cache:
            self._rope_cache = {key: rope_freqs(grid, self.cfg.head_dim, self.cfg.rope_theta, device)}
        return self._rope_cache[key]

    # ---- forward
    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the flow velocity.

        x: (B, C, T', h, w) noisy latents; t: (B,) or (B, T') timesteps in [0, 1] (see flow.py);
        text: (B, L, text_dim) token states; text_mask: (B, L) bool, True = real token.
        Returns (B, C, T', h, w).
        """
        cfg = self.cfg
        if x.ndim != 5 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"expected latents (B, {cfg.in_channels}, T', h, w), got {tuple(x.shape)}")
        if text.ndim != 3 or text.shape[-1] != cfg.text_dim or text.shape[0] != x.shape[0]:
            raise ValueError(f"expected text states (B={x.shape[0]}, L, {cfg.text_dim}), got {tuple(text.shape)}")
        B, _, T, H, W = x.shape
        grid = self.grid(T, H, W)
        pt = cfg.patch_size[0]

        # 1. Tokens: spacetime patches -> (B, N, D).
        w = self.patch_embedding.weight
        tokens = F.linear(self.patchify(x), w.view(w.shape[0], -1), self.patch_embedding.bias)  # (B, N, D)

        # 2. Time: one embedding per latent frame; a temporal patch takes the mean t of its frames.
        t = t.to(x.device)
        t = t[:, None].expand(B, T) if t.ndim == 1 else t
        if t.shape != (B, T):
            raise ValueError(f"timesteps must be (B,) or (B, T'={T}), got {tuple(t.shape)}")
        t = t.float().view(B, grid[0], pt).mean(-1)  # (B, F)
        e = self.time_embedding(sinusoidal(t.reshape(-1), cfg.freq_dim)).view(B, grid[0], -1)  # (B, F, D)
        e0 = self.time_projection(e).unflatten(-1, (6, cfg.dim))  # (B, F, 6, D)

        # 3. Text tokens and their padding mask for cross-attention.
        context = self.text_embedding(text.to(tokens.dtype))  # (B, L, D)
        mask = None if text_mask is None else text_mask.to(torch.bool)[:, None, None, :]  # (B, 1, 1, L)

        # 4. Transformer blocks.
        rope = self.rope(grid, x.device)
        for block in self.blocks:
            if cfg.gradient_checkpointing and self.training and torch.is_grad_enabled():
                tokens = checkpoint(block, tokens, e0, context, mask, rope, grid[0], use_reentrant=False)
            else:
                tokens = block(tokens, e0, context, mask, rope, grid[0])

        # 5. Head and back to latent layout.
        return self.unpatchify(self.head(tokens, e, grid[0]), grid)  # (B, C, T', h, w)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
