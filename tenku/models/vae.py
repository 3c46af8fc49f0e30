"""Causal 3D video VAE with chunked (constant-memory) encode and decode, after Wan 2.1's VAE.

Shapes: video (B, 3, T, H, W) in [-1, 1] with T = 1 + 4k  <->  latent (B, C, 1 + k, H/s, W/s), s =
cfg.spatial_compression. Latent frame 0 encodes pixel frame 0 alone (an image is a one-frame video); latent
frame j >= 1 encodes pixel frames 4j-3 .. 4j.

Causality: the only layers that mix frames are causal convs (tenku/models/causal_conv.py); norms are per pixel
over channels and attention is within a frame. So latent frame j depends only on pixel frames <= 4j, and
decoded frame t only on latent frames <= ceil(t / 4), bit for bit.

Locality (`cfg.local_time`): only the temporal resampling convs mix frames, 2 at a time, so latent frame j >= 1
depends only on pixel frames 4j-3 .. 4j (`receptive_field()` = 4), and decoded frames 4j-3 .. 4j only on latent
frames j-2 .. j. A still clip then gives equal latent frames from 1 on, and a clip started 4 frames later the
same latent frames, shifted by one. Without it the encoder sees `receptive_field()` = 77 frames at world-xs.

Chunking: encode feeds pixel chunks of 1, 4, 4, ... frames and decode one latent frame at a time, carrying
each causal conv's past inputs in a cache, so working memory does not grow with video length. The
whole-clip path (`chunked=False`, used by `forward` for training because it is faster) is the same
arithmetic with zero past; the two agree to float rounding (measured: encode bit for bit, decode within
~1e-5, where oneDNN picks different conv kernels for 1 and for many frames).

Tiling: `tile` (pixels) splits frames into overlapping square tiles with their own caches and blends them
with linear ramps, for frames too large for memory. Tiled results are close to, not equal to, untiled ones.

`latent_mean` / `latent_std` are per-channel buffers saved in the state dict; encode/decode do NOT apply
them: the diffusion side calls `normalize` after encode and `denormalize` before decode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from tenku.models.causal_conv import Cache, CausalConv3d, Downsample, FrameAttention, ResBlock, RMSNorm, Upsample
from tenku.config import VAEConfig

LOGVAR_INIT = -6.0  # initial posterior log-variance
ENCODE_CHUNK = 4  # pixel frames per encode step after the first frame (one latent frame each)


# ----------------------------------------------------------------------------- size validation

def nearest_valid(value: int, valid: Callable[[int], bool], lowest: int) -> str:
    """'a or b' for the valid values just below and above `value` (only b if nothing valid lies below)."""
    below = value - 1
    while below >= lowest and not valid(below):
        below -= 1
    above = max(value + 1, lowest)
    while not valid(above):
        above += 1
    return f"{below} or {above}" if below >= lowest else f"{above}"


def check_frames(frames: int) -> None:
    """Raise ValueError unless frames = 1 + 4k, k >= 0."""
    if not isinstance(frames, int) or frames < 1 or (frames - 1) % 4:
        near = nearest_valid(int(frames), lambda f: (f - 1) % 4 == 0, 1)
        raise ValueError(f"frames must be 1 + 4k (got {frames}; nearest valid: {near})")


def check_multiple(name: str, value: int, multiple: int) -> None:
    """Raise ValueError unless value is a positive multiple of `multiple` (e.g. height vs compression)."""
    if not isinstance(value, int) or value < multiple or value % multiple:
        near = nearest_valid(int(value), lambda v: v % multiple == 0, multiple)
        raise ValueError(f"{name} {value} is not a multiple of {multiple} (nearest valid: {near})")


# ----------------------------------------------------------------------------- posterior

def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per element, the shape of `mean`: the one KL formula (summed per
    sample by `DiagonalGaussian.kl`, averaged by the training loss `vae_loss.kl_loss`)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


class DiagonalGaussian:
    """Posterior N(mean, exp(logvar)) over latents; mean, logvar (B, C, T', h, w)."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean
        self.logvar = logvar.clamp(-30.0, 20.0)  # keeps exp() finite for an untrained encoder

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + torch.exp(0.5 * self.logvar) * noise  # (B, C, T', h, w)

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, 1)) summed over C, T', h, w: shape (B,). Divide by mean[0].numel() for per-element."""
        return gaussian_kl(self.mean, self.logvar).flatten(1).sum(dim=1)  # (B,)


# ----------------------------------------------------------------------------- networks

def _channels(cfg: VAEConfig) -> list[int]:
    return [cfg.base_channels * m for m in cfg.channel_mult]


def _time_kernels(cfg: VAEConfig) -> tuple[int, int]:
    """(frames per conv outside resampling, frames per temporal resampling conv): see VAEConfig.local_time."""
    return (1, 2) if cfg.local_time else (3, 3)


def _mid_blocks(c: int, cfg: VAEConfig) -> list[nn.Module]:
    kt = _time_kernels(cfg)[0]
    return [ResBlock(c, c, kt)] + ([FrameAttention(c)] if cfg.mid_attention else []) + [ResBlock(c, c, kt)]


class Encoder(nn.Module):
    """(B, T, H, W, 3) -> (B, T', H/s, W/s, 2 * latent_channels): posterior mean and logvar."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch = _channels(cfg)
        kt, kt_resample = _time_kernels(cfg)
        self.conv_in = CausalConv3d(cfg.in_channels, ch[0], kernel=(kt, 3, 3))
        blocks, c = [], ch[0]
        for i, ci in enumerate(ch):
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(c, ci, kt))
                c = ci
            if i + 1 < len(ch):
                blocks.append(Downsample(c, c, (i + 1) in cfg.temporal_down_levels, kt_resample, cfg.wan_layout))
        self.blocks = nn.ModuleList(blocks + _mid_blocks(c, cfg))
        self.norm_out = RMSNorm(c)
        self.conv_out = CausalConv3d(c, 2 * cfg.latent_channels, kernel=(kt, 3, 3))
        self.quant_conv = CausalConv3d(2 * cfg.latent_channels, 2 * cfg.latent_channels, 1) if cfg.wan_layout else None

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        x = self.conv_in(x, cache)  # (B, T, H, W, C0)
        for block in self.blocks:
            x = block(x, cache)  # down to (B, T', h, w, C_top)
        x = self.conv_out(F.silu(self.norm_out(x)), cache)  # (B, T', h, w, 2C)
        return x if self.quant_conv is None else self.quant_conv(x)


class Decoder(nn.Module):
    """(B, T', h, w, latent_channels) -> (B, T, H, W, 3); one more ResBlock per level than the encoder."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch = _channels(cfg)
        kt, kt_resample = _time_kernels(cfg)
        c = ch[-1]
        self.post_quant_conv = CausalConv3d(cfg.latent_channels, cfg.latent_channels, 1) if cfg.wan_layout else None
        self.conv_in = CausalConv3d(cfg.latent_channels, c, kernel=(kt, 3, 3))
        blocks = _mid_blocks(c, cfg)
        for i in reversed(range(len(ch))):
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(ResBlock(c, ch[i], kt))
                c = ch[i]
            if i > 0:
                out = c // 2 if cfg.wan_layout else ch[i - 1]
                blocks.append(Upsample(c, out, i in cfg.temporal_down_levels, kt_resample, cfg.wan_layout))
                c = out
        self.blocks = nn.ModuleList(blocks)
        self.norm_out = RMSNorm(c)
        self.conv_out = CausalConv3d(c, cfg.in_channels, kernel=(kt, 3, 3))

    def forward(self, z: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)  # (B, T', h, w, C), per latent pixel
        x = self.conv_in(z, cache)  # (B, T', h, w, C_top)
        for block in self.blocks:
            x = block(x, cache)  # up to (B, T, H, W, C0)
        return self.conv_out(F.silu(self.norm_out(x)), cache)  # (B, T, H, W, 3)


# ----------------------------------------------------------------------------- spatial tiling

def _tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    if tile >= size:
        return [0]
    return list(range(0, size - tile, tile - overlap)) + [size - tile]


def _ramp(n: int, ramp: int, left: bool, right: bool) -> torch.Tensor:
    """(n,) blend weights rising over `ramp` samples at inner tile edges (never 0, so sums stay positive)."""
    w = torch.ones(n)
    r = torch.arange(1, ramp + 1, dtype=torch.float32) / (ramp + 1)  # (ramp,)
    if left:
        w[:ramp] = torch.minimum(w[:ramp], r)
    if right:
        w[n - ramp :] = torch.minimum(w[n - ramp :], r.flip(0))
    return w


def run_tiled(fn: Callable[[torch.Tensor, Cache | None], torch.Tensor], x: torch.Tensor, tile: int | None,
              overlap: int, scale: float, caches: dict | None) -> torch.Tensor:
    """Apply fn to overlapping (tile x tile) windows of x (B, T, H, W, C) and blend; output size = input * scale.

    caches: None for a whole clip, else a dict that keeps one Cache per tile across time chunks.
    """
    H, W = x.shape[2:4]
    if tile is None or (tile >= H and tile >= W):
        return fn(x, None if caches is None else caches.setdefault((0, 0), {}))
    out = wsum = None
    ramp = round(overlap * scale)
    for y0 in _tile_starts(H, tile, overlap):
        for x0 in _tile_starts(W, tile, overlap):
            cache = None if caches is None else caches.setdefault((y0, x0), {})
            part = fn(x[:, :, y0 : y0 + tile, x0 : x0 + tile], cache)  # (B, T2, th*scale, tw*scale, C2)
            if out is None:
                out = part.new_zeros(part.shape[0], part.shape[1], round(H * scale), round(W * scale), part.shape[4])
                wsum = part.new_zeros(out.shape[2], out.shape[3], 1)
            th, tw = part.shape[2:4]
            oy, ox = round(y0 * scale), round(x0 * scale)
            wy = _ramp(th, ramp, oy > 0, oy + th < out.shape[2])
            wx = _ramp(tw, ramp, ox > 0, ox + tw < out.shape[3])
            w = (wy[:, None, None] * wx[None, :, None]).to(part)  # (th, tw, 1)
            out[:, :, oy : oy + th, ox : ox + tw] += part * w
            wsum[oy : oy + th, ox : ox + tw] += w
    return out / wsum


# ----------------------------------------------------------------------------- the VAE

def fold_time_taps(state: dict[str, torch.Tensor], like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of one VAE for another whose causal convs see fewer frames (e.g. `local_time` from
    today's kernel-3 VAE): each conv weight (C_out, C_in, K, kh, kw) becomes (C_out, C_in, k, kh, kw) with the
    K - k + 1 oldest taps summed into the first and the newest k - 1 kept. On a still clip, where every tap
    sees the same frame, the folded conv computes what the original did away from the zero padding before
    frame 0: a warm start for a local VAE that keeps what the original learnt about space. `like`: the target
    model's state dict (shapes); every other tensor is copied as is."""
    out = {}
    for name, w in state.items():
        want = like[name].shape if name in like else w.shape  # an unknown key is left to load_state to name
        if w.shape != want and w.dim() == 5 and w.shape[:2] + w.shape[3:] == want[:2] + want[3:] and want[2] < w.shape[2]:
            k = want[2]
            w = torch.cat([w[:, :, : w.shape[2] - k + 1].sum(2, keepdim=True), w[:, :, w.shape[2] - k + 1:]], dim=2)
        out[name] = w
    return out


class VideoVAE(nn.Module):
    """Causal video VAE: see the module docstring for shapes, causality and chunking."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        # Start the posterior nearly deterministic (std e^-3 = 0.05). From logvar ~ 0 the sampled noise is as large
        # as the signal, so early training can only learn averages, and Adam needs ~1/lr steps to move the bias
        # far enough (measured: L1 stuck near 0.3 for 600 steps on Tenku World).
        c = cfg.latent_channels
        with torch.no_grad():
            self.encoder.conv_out.weight[c:].zero_()
            self.encoder.conv_out.bias[c:].fill_(LOGVAR_INIT)
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_channels))
        self.register_buffer("latent_std", torch.ones(cfg.latent_channels))

    # 1. sizes ----------------------------------------------------------------

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(T', h, w) for a video of (frames, height, width); ValueError naming the nearest valid sizes."""
        s = self.cfg.spatial_compression
        check_frames(frames)
        check_multiple("height", height, s)
        check_multiple("width", width, s)
        return (frames - 1) // 4 + 1, height // s, width // s

    def pixel_frames(self, latent_frames: int) -> int:
        if not isinstance(latent_frames, int) or latent_frames < 1:
            raise ValueError(f"latent_frames must be an int >= 1, got {latent_frames}")
        return 1 + 4 * (latent_frames - 1)

    def receptive_field(self) -> int:
        """Pixel frames one latent frame sees: latent frame j is a function of pixel frames 4j - rf + 1 .. 4j
        (zeros before frame 0). 77 for today's world-xs encoder, 4 with `local_time`."""
        rf, rate = 1, 1  # rate: pixel frames per frame at the current layer
        for m in self.encoder.modules():  # registration order is the order of application
            if isinstance(m, CausalConv3d):
                rf += (m.kernel_size[0] - 1) * rate
                rate *= m.stride[0]
        return rf

    def _check(self, x: torch.Tensor, name: str, channels: int) -> None:
        if not torch.is_tensor(x) or x.ndim != 5:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"{name} must be a 5D tensor (B, {channels}, T, H, W), got {shape}")
        if x.shape[1] != channels:
            raise ValueError(f"{name} must have {channels} channels in dim 1, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"{name} must be a float tensor, got {x.dtype}")

    def _check_tile(self, tile: int | None) -> None:
        s = self.cfg.spatial_compression
        if tile is not None and (not isinstance(tile, int) or tile < 2 * s or tile % s):
            raise ValueError(f"tile must be a multiple of {s} and >= {2 * s} pixels, got {tile}")

    # 2. encode ----------------------------------------------------------------

    def encode(self, video: torch.Tensor, chunked: bool = True, tile: int | None = None) -> DiagonalGaussian:
        """video (B, 3, T, H, W) in [-1, 1] -> posterior over (B, C, T', h, w). tile: tile size in pixels."""
        self._check(video, "video", self.cfg.in_channels)
        self.latent_shape(video.shape[2], video.shape[3], video.shape[4])
        self._check_tile(tile)
        s, T = self.cfg.spatial_compression, video.shape[2]
        overlap = max(s, (tile or 0) // 4 // s * s)
        bounds = [0] + list(range(1, T + 1, ENCODE_CHUNK)) if chunked else [0, T]  # chunks 1, 4, 4, ...
        caches = {} if chunked else None
        parts = []
        for t0, t1 in zip(bounds[:-1], bounds[1:]):
            x = video[:, :, t0:t1].permute(0, 2, 3, 4, 1)  # (B, t, H, W, 3)
            parts.append(run_tiled(self.encoder, x, tile, overlap, 1 / s, caches))  # (B, t', h, w, 2C)
        moments = torch.cat(parts, dim=1).permute(0, 4, 1, 2, 3)  # (B, 2C, T', h, w)
        mean, logvar = moments.chunk(2, dim=1)
        return DiagonalGaussian(mean.contiguous(), logvar.contiguous())

    # 3. decode ----------------------------------------------------------------

    def _decode_steps(self, z: torch.Tensor, chunked: bool, tile: int | None) -> Iterator[torch.Tensor]:
        self._check(z, "z", self.cfg.latent_channels)
        self._check_tile(tile)
        tile_lat = None if tile is None else tile // self.cfg.spatial_compression
        overlap = max(1, (tile_lat or 0) // 4)
        bounds = list(range(z.shape[2] + 1)) if chunked else [0, z.shape[2]]  # one latent frame per step
        caches = {} if chunked else None
        for t0, t1 in zip(bounds[:-1], bounds[1:]):
            x = z[:, :, t0:t1].permute(0, 2, 3, 4, 1)  # (B, t', h, w, C)
            y = run_tiled(self.decoder, x, tile_lat, overlap, self.cfg.spatial_compression, caches)
            yield y.permute(0, 4, 1, 2, 3)  # (B, 3, t, H, W), a view

    def iter_decode(self, z: torch.Tensor, tile: int | None = None) -> Iterator[torch.Tensor]:
        """Yield pixel chunks (B, 3, t_i, H, W), t_0 = 1 then 4, one latent frame at a time (constant memory).

        Run under torch.no_grad() (or with a frozen VAE) so no autograd graph accumulates across chunks.
        """
        return self._decode_steps(z, chunked=True, tile=tile)

    def decode(self, z: torch.Tensor, chunked: bool = True, tile: int | None = None) -> torch.Tensor:
        """z (B, C, T', h, w) (not normalized) -> video (B, 3, 1 + 4(T'-1), H, W), not clamped."""
        if not chunked:
            return next(self._decode_steps(z, chunked=False, tile=tile)).contiguous()
        out, t = None, 0
        for part in self._decode_steps(z, chunked=True, tile=tile):  # (B, 3, t_i, H, W)
            if out is None:  # fill a preallocated output so peak memory is the output plus one chunk
                B, C, _, H, W = part.shape
                out = part.new_empty(B, C, self.pixel_frames(z.shape[2]), H, W)
            out[:, :, t : t + part.shape[2]] = part
            t += part.shape[2]
        return out

    # 4. training and latent statistics ----------------------------------------

    def forward(self, video: torch.Tensor, generator: torch.Generator | None = None):
        """(recon (B, 3, T, H, W), posterior) on the whole clip at once (same numbers as chunked, faster)."""
        posterior = self.encode(video, chunked=False)
        return self.decode(posterior.sample(generator), chunked=False), posterior

    def _stats(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(z, "z", self.cfg.latent_channels)
        shape = (1, -1, 1, 1, 1)
        return self.latent_mean.view(shape).to(z), self.latent_std.view(shape).to(z)

    def encode_latents(self, video: torch.Tensor, chunked: bool = True, tile: int | None = None) -> torch.Tensor:
        """video (B, 3, T, H, W) -> what the DiT reads: the posterior *mean*, normalised (B, C, T', h, w). Use it
        wherever the DiT's latents come from pixels (the latent cache, raw-clip training, given frames), so they
        agree. The mean rather than a sample: the VAE is trained with a tiny KL weight, so its posterior std is
        far below the flow's noise, and a sample would only make the cache and raw-clip training disagree."""
        return self.normalize(self.encode(video, chunked, tile).mean)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(z)
        return (z - mean) / std  # (B, C, T', h, w)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(z)
        return z * std + mean  # (B, C, T', h, w)
