"""Prompt -> video: the one code path shared by the CLI, the server and notebooks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import flow
from .checkpoint import load_model_config, load_state
from .config import ModelConfig
from .dit import DiT
from .sampler import SAMPLERS, Conditioning, GuidedVelocity, sample
from .text import load_text_encoder
from .vae import VideoVAE
from .video_io import tensor_to_frames, write_video

DEFAULT_MODEL = Path(__file__).parent / "assets" / "world-s"


@dataclass
class Video:
    frames: torch.Tensor  # (T, H, W, 3) uint8
    fps: float

    def save(self, path: str | Path) -> Path:
        return write_video(path, self.frames, self.fps)


def _nearest(value: int, valid: Callable[[int], bool], lo: int = 1) -> list[int]:
    below = next((v for v in range(value, lo - 1, -1) if valid(v)), None)
    above = next(v for v in range(max(value, lo), value + 10_000) if valid(v))
    return sorted({v for v in (below, above) if v is not None})


class Pipeline:
    modes = {"text"}

    def __init__(self, cfg: ModelConfig, vae: VideoVAE, dit: DiT, text_encoder, device: str | torch.device = "cpu"):
        self.cfg, self.device = cfg, torch.device(device)
        self.vae = vae.eval().requires_grad_(False).to(self.device)
        self.dit = dit.eval().requires_grad_(False).to(self.device)
        self.text_encoder = text_encoder
        if text_encoder.dim != cfg.dit.text_dim:
            raise ValueError(f"text encoder width {text_encoder.dim} != DiT text_dim {cfg.dit.text_dim}")

    @classmethod
    def from_dir(cls, path: str | Path, device: str | torch.device = "cpu") -> "Pipeline":
        path = Path(path)
        cfg = load_model_config(path)
        vae, dit = VideoVAE(cfg.vae), DiT(cfg.dit)
        load_state(vae, path / "vae.safetensors")
        load_state(dit, path / "dit.safetensors")
        return cls(cfg, vae, dit, load_text_encoder(cfg.text_encoder, cfg.text_max_length, device), device)

    # ---- sizes
    @property
    def spatial_stride(self) -> int:
        """Pixels per token side: VAE compression x DiT patch (e.g. 8 x 2 = 16)."""
        return self.cfg.vae.spatial_compression * self.cfg.dit.patch_size[1]

    def check_size(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Latent grid (T', h, w) for a pixel size, or a ValueError that names the nearest valid values."""
        pt = self.cfg.dit.patch_size[0]
        s = self.spatial_stride
        errors = []
        if not isinstance(frames, int) or frames < 1 or (frames - 1) % 4 or ((frames - 1) // 4 + 1) % pt:
            ok = lambda n: (n - 1) % 4 == 0 and ((n - 1) // 4 + 1) % pt == 0
            errors.append(f"frames must be 1 + 4k (got {frames}; nearest valid: {' or '.join(map(str, _nearest(int(frames), ok)))})")
        for name, v in (("height", height), ("width", width)):
            if not isinstance(v, int) or v < s or v % s:
                near = _nearest(max(int(v), s), lambda n: n % s == 0, lo=s)
                errors.append(f"{name} must be a positive multiple of {s} (got {v}; nearest valid: {' or '.join(map(str, near))})")
        if errors:
            raise ValueError("; ".join(errors))
        return (frames - 1) // 4 + 1, height // self.cfg.vae.spatial_compression, width // self.cfg.vae.spatial_compression

    def frames_for_seconds(self, seconds: float, fps: float) -> int:
        """The valid frame count (1 + 4k) closest to `seconds` of video."""
        k = max(0, round((seconds * fps - 1) / 4))
        return 1 + 4 * k

    # ---- generation
    @torch.inference_mode()
    def generate(self, prompt: str, frames: int | None = None, height: int | None = None, width: int | None = None,
                 fps: float | None = None, steps: int | None = None, guidance: float | None = None,
                 sampler: str | None = None, seed: int = 0,
                 callback: Callable[[int, int], None] | None = None) -> Video:
        """Generate one video. Unset options take the model's defaults (config.json "sample")."""
        d = self.cfg.sample
        frames, height, width = frames or d.frames, height or d.height, width or d.width
        fps, steps = fps or d.fps, steps or d.steps
        guidance = d.guidance if guidance is None else guidance
        sampler = sampler or d.sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty string")
        T, h, w = self.check_size(frames, height, width)

        # 1. Text.
        text, text_mask = self.text_encoder.encode([prompt])
        text, text_mask = text.to(self.device), text_mask.to(self.device)
        # 2. Noise from the seed alone (CPU generator, so the same seed gives the same video on any device).
        g = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(1, self.cfg.vae.latent_channels, T, h, w, generator=g).to(self.device)
        # 3. Integrate the flow.
        shift = flow.shift_for_tokens(self.dit.num_tokens(T, h, w), self.cfg.flow)
        velocity = GuidedVelocity(self.dit, text, text_mask, guidance)
        z = sample(velocity, noise, steps, shift, sampler, callback=callback)  # (1, C, T', h, w)
        # 4. Decode.
        video = self.vae.decode(self.vae.denormalize(z))  # (1, 3, T, H, W)
        return Video(tensor_to_frames(video[0]), fps)


def load_pipeline(path: str | Path | None = None, device: str | torch.device = "cpu") -> Pipeline:
    """Load a model directory; None loads the default model shipped inside the package."""
    if path is None:
        if not (DEFAULT_MODEL / "config.json").is_file():
            raise FileNotFoundError(
                f"no default model at {DEFAULT_MODEL}; pass a model directory (create a random one with"
                " `tenku init-model --preset tiny DIR`)")
        path = DEFAULT_MODEL
    return Pipeline.from_dir(path, device)


def init_model(path: str | Path, preset_name: str = "tiny", seed: int = 0) -> Path:
    """Write a randomly initialised model directory (for tests and as a training starting point)."""
    from .checkpoint import save_model_dir
    from .config import preset

    cfg = preset(preset_name)
    torch.manual_seed(seed)
    return save_model_dir(path, cfg, VideoVAE(cfg.vae), DiT(cfg.dit))
