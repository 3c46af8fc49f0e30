"""Causal 3D convolutions that stream through time with a cache, and the VAE's per-frame building blocks.

Layout: every module here takes activations as (B, T, H, W, C): frames first and channels last, so per-frame
operations are a free reshape to (B*T, H, W, C), per-pixel norms reduce over contiguous memory, convs run
oneDNN's native channels-last kernels, and the time axis is sliced in contiguous blocks. The VAE converts
from and to the public (B, C, T, H, W) layout at its edges.

Streaming: a causal conv pads only toward the past. When a video is processed chunk by chunk, each conv
keeps in a `Cache` (a dict keyed by the module) the input frames its next outputs still need, so chunk
boundaries are invisible. Passing `cache=None` means "this is the whole clip": the past is zeros and
nothing is kept. Both paths run the same arithmetic per output frame.

Why conv2d and not conv3d: a (kt, kh, kw) causal conv is computed as a conv2d over the kt past frames
stacked along channels. On CPU torch's conv3d is several times slower for chunks of a few frames (oneDNN
picks a slow path), and with every frame an independent batch item a frame's output does not depend on
how many frames share the call, so chunked and whole-clip results agree.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from tenku.models.attention import attention

# Per-layer streaming state: conv -> past input frames (B, k, H, W, C); temporal upsampler -> True once
# it has emitted the first frame. One Cache per video stream (and per spatial tile).
Cache = dict


def _per_frame(fn, x: torch.Tensor) -> torch.Tensor:
    """Apply an NCHW op (N, C, H, W) -> (N, C', H', W') to every frame of x (B, T, H, W, C).

    The permutes are views: the op sees a channels-last NCHW tensor and oneDNN returns one, no copies.
    """
    B, T = x.shape[:2]
    y = fn(x.flatten(0, 1).permute(0, 3, 1, 2))  # (B*T, C', H', W'), channels-last memory
    return y.permute(0, 2, 3, 1).unflatten(0, (B, T))  # (B, T, H', W', C')


class CausalConv3d(nn.Conv3d):
    """3D conv padded only toward the past in time (zeros before frame 0) and symmetrically in space.

    Output frame j sees padded input frames [j*st, j*st + kt), i.e. real frames <= j*st. With kernel 3 and
    temporal stride 2, 1 + 2k frames give 1 + k: frame 0 alone makes output 0, then each pair makes one.
    The weight keeps nn.Conv3d's (C_out, C_in, kt, kh, kw) shape and init.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int | tuple[int, int, int] = 3, stride_t: int = 1):
        kernel = (kernel,) * 3 if isinstance(kernel, int) else tuple(kernel)
        super().__init__(in_ch, out_ch, kernel, stride=(stride_t, 1, 1), padding=0)
        self.spatial_pad = (kernel[1] // 2, kernel[2] // 2)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:  # (B, T, H, W, C)
        B, T, H, W, C = x.shape
        kt, st = self.kernel_size[0], self.stride[0]
        if kt > 1:
            past = cache.get(self) if cache is not None else None
            if past is None:
                past = x.new_zeros(B, kt - 1, H, W, C)  # causal zero padding before frame 0
            x = torch.cat([past, x], dim=1)  # (B, kt-1+T, H, W, C)
        n = (x.shape[1] - kt) // st + 1  # output frames this chunk can produce
        if n < 1:
            raise RuntimeError(f"chunk of {T} frames too short for a causal conv with kernel {kt}, stride {st}")
        if cache is not None and kt > 1:
            cache[self] = x[:, n * st :].clone()  # frames later outputs still need (clone: free the rest)
        taps = [x[:, k : k + (n - 1) * st + 1 : st] for k in range(kt)]  # kt x (B, n, H, W, C)
        x = torch.cat(taps, dim=-1) if kt > 1 else taps[0]  # (B, n, H, W, kt*C), oldest frame first
        w = self.weight.transpose(1, 2).flatten(1, 2)  # (C_out, kt*C_in, kh, kw), matches the tap order
        if self.kernel_size[1:] == (1, 1):
            return F.linear(x, w.flatten(1), self.bias)  # (B, n, H, W, C_out)
        return _per_frame(lambda f: F.conv2d(f, w, self.bias, padding=self.spatial_pad), x)  # (B, n, H, W, C_out)


class RMSNorm(nn.Module):
    """Normalise each pixel of each frame over channels: no statistics over time or space. Wan's VAE norm,
    x / max(|x|, eps) * sqrt(C) * gamma, with its parameter name, so Wan's VAE weights load unrenamed. It is
    torch's nn.RMSNorm (the DiT's, x / sqrt(mean(x^2) + eps)) but for where eps enters; switching would move
    world-xs latents by ~5e-6 and reconstructions by ~8e-6 (measured), away from Wan's arithmetic."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.scale = channels**0.5
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H, W, C)
        return F.normalize(x, dim=-1, eps=self.eps) * (self.gamma * self.scale)


class ResBlock(nn.Module):
    """norm-SiLU-conv twice with a residual; both convs causal, 3x3 in space, `time_kernel` frames in time."""

    def __init__(self, in_ch: int, out_ch: int, time_kernel: int = 3):
        super().__init__()
        self.norm1 = RMSNorm(in_ch)
        self.conv1 = CausalConv3d(in_ch, out_ch, kernel=(time_kernel, 3, 3))
        self.norm2 = RMSNorm(out_ch)
        self.conv2 = CausalConv3d(out_ch, out_ch, kernel=(time_kernel, 3, 3))
        self.shortcut = CausalConv3d(in_ch, out_ch, kernel=1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:  # (B, T, H, W, C)
        h = self.conv1(F.silu(self.norm1(x)), cache)
        h = self.conv2(F.silu(self.norm2(h)), cache)
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class FrameAttention(nn.Module):
    """Single-head self-attention over the pixels of each frame separately (never across time)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = RMSNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:  # (B, T, H, W, C)
        B, T, H, W, C = x.shape
        qkv = self.qkv(self.norm(x)).reshape(B * T, 1, H * W, 3 * C)  # one frame per batch item
        q, k, v = qkv.chunk(3, dim=-1)  # 3 x (B*T, 1, H*W, C)
        h = attention(q, k, v)  # (B*T, 1, H*W, C)
        return x + self.proj(h.reshape(B, T, H, W, C))


def preserve_signal(conv: nn.Conv2d, time_conv: "CausalConv3d | None") -> None:
    """Initialise a resampling step so it passes its input on at full strength.

    These steps have no residual path. With PyTorch's default init each conv keeps about a third of the
    variance, and a causal time conv on a first frame (two of its three taps see the zero padding) a ninth,
    while the input-independent biases do not shrink: measured at init, the encoder's latent then varied
    across inputs 10x less than across positions, and training on Tenku World converged to the mean image
    (a decoder that ignores z). So: variance-preserving spatial weights, zero biases, and time convs that
    start as the identity on the newest frame (each output frame copies the frame it is aligned with).
    Skipped on the meta device (a model about to take a file's weights): there the init would only cost time
    (its random draw imports torch._dynamo, about 0.6 s of a fresh process's loading).
    """
    if conv.weight.is_meta:
        return
    nn.init.kaiming_normal_(conv.weight, nonlinearity="linear")
    nn.init.zeros_(conv.bias)
    if time_conv is not None:
        with torch.no_grad():
            w = time_conv.weight  # (C_out, C_in, kt, 1, 1); C_out = k * C_in (k copies for upsampling)
            w.zero_()
            eye = torch.eye(w.shape[1], dtype=w.dtype)
            for k in range(w.shape[0] // w.shape[1]):
                w[k * w.shape[1]:(k + 1) * w.shape[1], :, -1, 0, 0] = eye
            time_conv.bias.zero_()


class Downsample(nn.Module):
    """Halve H and W (stride-2 conv per frame); optionally halve time with a causal (kt,1,1) stride-2 conv,
    which maps 1 + 2k frames to 1 + k (frame 0 alone, then pairs). kt = 2 reads each pair alone; kt = 3 also
    the frame before it. `first_frame_alone` (Wan's VAE): the stream's frame 0 skips the time conv unchanged."""

    def __init__(self, in_ch: int, out_ch: int, temporal: bool, time_kernel: int = 3, first_frame_alone: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, stride=2)
        self.time_conv = (CausalConv3d(out_ch, out_ch, kernel=(time_kernel, 1, 1), stride_t=2)
                          if temporal else None)
        self.first_frame_alone = first_frame_alone
        preserve_signal(self.conv, self.time_conv)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:  # (B, T, H, W, C)
        x = F.pad(x, (0, 0, 0, 1, 0, 1))  # (B, T, H+1, W+1, C): pad right/bottom so stride 2 halves exactly
        x = _per_frame(self.conv, x)  # (B, T, H/2, W/2, C')
        if self.time_conv is not None:
            first = cache is None or self.time_conv not in cache
            y = self.time_conv(x, cache)  # (B, T', H/2, W/2, C'); the conv still caches frame 0 as later context
            x = torch.cat([x[:, :1], y[:, 1:]], dim=1) if first and self.first_frame_alone else y
        return x


class Upsample(nn.Module):
    """Mirror of Downsample: optionally double time (a causal conv emits two frames per input frame, except
    that the stream's first frame gives one), then nearest 2x in space and a 3x3 conv per frame.
    `first_frame_alone` (Wan's VAE): frame 0 skips the time conv unchanged, whose stream starts at frame 1."""

    def __init__(self, in_ch: int, out_ch: int, temporal: bool, time_kernel: int = 3, first_frame_alone: bool = False):
        super().__init__()
        self.time_conv = CausalConv3d(in_ch, 2 * in_ch, kernel=(time_kernel, 1, 1)) if temporal else None
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.first_frame_alone = first_frame_alone
        preserve_signal(self.conv, self.time_conv)

    def _double(self, x: torch.Tensor, cache: Cache | None) -> torch.Tensor:
        B, T, H, W, C = x.shape
        y = self.time_conv(x, cache)  # (B, T, H, W, 2C)
        return y.view(B, T, H, W, 2, C).permute(0, 1, 4, 2, 3, 5).reshape(B, 2 * T, H, W, C)  # t -> 2t, 2t+1

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:  # (B, T, H, W, C)
        if self.time_conv is not None:
            first = cache is None or self not in cache
            if cache is not None:
                cache[self] = True
            if first and self.first_frame_alone:
                x = torch.cat([x[:, :1], self._double(x[:, 1:], cache)], dim=1) if x.shape[1] > 1 else x
            elif first:
                x = self._double(x, cache)[:, 1:]  # latent frame 0 stands for one frame only: 1 + k -> 1 + 2k
            else:
                x = self._double(x, cache)
        return _per_frame(lambda f: self.conv(F.interpolate(f, scale_factor=2.0, mode="nearest")), x)
