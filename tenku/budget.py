"""How much memory a generation request needs, and how much this machine allows: the check that every
request passes before anything is allocated (so `--height 100000` is refused in milliseconds, not after
4 GB and two minutes).

The estimate is an upper bound for one clip, float32, summed over what is alive at the peak:
  1. the DiT on 2 x N tokens (classifier-free guidance batches the conditional and unconditional pass):
     a block's activations, N x (6 dim + ffn_dim), plus the cross-attention scores 2 x heads x N x L (L the
     text length; its padding mask keeps it off the fused kernels). Self-attention has no mask, so
     PyTorch's fused kernels run it on CPUs and GPUs alike without materialising N^2 scores (measured on
     this CPU: 8,192 tokens x 4 heads grow the peak by 11 MB, not the 1 GB the scores would take);
  2. the VAE decoder on one chunk of 4 frames, every resolution level (12 live tensors per level);
  3. the output video as float and as uint8, and the given frames (image, extend, ...) likewise;
  4. a fixed 256 MB for the text encoder, the allocator's slack and first-call workspaces.
Measured with world-xs on a CPU (peak RSS growth): 17x64x64 86 MB (estimate 279), 17x256x256 401 (634),
5x512x512 1059 (1661), 1x1024x1024 2056 (5733).
The budget is 80% of the machine's memory (of the GPU's on CUDA); TENKU_MAX_MEMORY_GB overrides it.
"""

from __future__ import annotations

import os

import torch

from tenku.config import ModelConfig

MAX_SIDE = 8192  # pixels: the largest height or width of any video
MAX_VIDEO_FRAMES = 28_800  # one hour at 8 fps: the longest video (a sliding window over time, see long_video.py)
_F32 = 4
_OVERHEAD = 256 * 2**20


def estimate_bytes(cfg: ModelConfig, frames: int, height: int, width: int, given_frames: int = 0) -> int:
    """Upper estimate of the peak memory of generating one clip of `frames` x `height` x `width` pixels."""
    v, d = cfg.vae, cfg.dit
    s = v.spatial_compression
    latent_frames = (frames - 1) // 4 + 1
    pt, ph, pw = d.patch_size
    tokens = -(-latent_frames // pt) * -(-(height // s) // ph) * -(-(width // s) // pw)
    # 1. DiT.
    dit = 2 * tokens * (6 * d.dim + d.ffn_dim) * _F32 + 2 * d.num_heads * tokens * cfg.text_max_length * _F32
    # 2. VAE decoder, one 4-frame chunk: level i has H / 2^i x W / 2^i pixels and base x mult[i] channels.
    vae = sum(12 * 4 * (height >> i) * (width >> i) * v.base_channels * m * _F32 for i, m in enumerate(v.channel_mult))
    # 3. Output and given frames: (3, T, H, W) float + (T, H, W, 3) uint8 each.
    pixels = (frames + given_frames) * height * width * 3 * (_F32 + 1)
    return int(dit + vae + pixels + _OVERHEAD)


def memory_budget(device: str | torch.device = "cpu") -> int:
    """Bytes a request may use: TENKU_MAX_MEMORY_GB, else 80% of the device's memory."""
    env = os.environ.get("TENKU_MAX_MEMORY_GB")
    if env:
        try:
            return int(float(env) * 2**30)
        except ValueError:
            raise ValueError(f"TENKU_MAX_MEMORY_GB must be a number of gigabytes, got {env!r}") from None
    device = torch.device(device)
    if device.type == "cuda":
        return int(0.8 * torch.cuda.get_device_properties(device).total_memory)
    return int(0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_budget(cfg: ModelConfig, frames: int, height: int, width: int, budget: int, given_frames: int = 0) -> None:
    """ValueError stating the estimate and the budget when a clip would not fit."""
    need = estimate_bytes(cfg, frames, height, width, given_frames)
    if need > budget:
        raise ValueError(f"{frames} frames of {width}x{height} (WxH) need about {need / 2**30:.1f} GB (upper "
                         f"estimate), more than the {budget / 2**30:.1f} GB allowed here (80% of this machine's "
                         f"memory, or TENKU_MAX_MEMORY_GB); ask for fewer frames or a smaller size")
