"""Prompt -> video: the one code path shared by the CLI, the server and notebooks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import flow
from .budget import MAX_SIDE, MAX_VIDEO_FRAMES, check_budget, memory_budget
from .checkpoint import check_before_build, load_model_config, load_state
from .config import ModelConfig
from .dit import DiT
from .conditioning import Conditioner, Plan, check_frame_size, load_frames, valid_prefix
from .sampler import SAMPLERS, Conditioning, GuidedVelocity, sample
from .text import load_text_encoder
from .vae import VideoVAE, nearest_valid
from .video_io import peek_media, tensor_to_frames, write_video

DEFAULT_MODEL = Path(__file__).parent / "assets" / "world-xs"
MAX_INPUT_FRAMES = 4097  # frames of a given video (extend, connect, edit)


def check_number(name: str, value, lo: float, hi: float, integer: bool = False, why: str = "") -> None:
    """ValueError unless `value` is a finite number (an integer if asked) in [lo, hi]: NaN, 0 for a count and
    negatives are refused with the range, never replaced by a default. `why` explains the upper limit."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and lo <= value <= hi
    if not ok or (integer and not float(value).is_integer()):
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'} in [{lo:g}, {hi:g}], got "
                         f"{value!r}{f' ({why})' if why else ''}")


@dataclass
class Video:
    frames: torch.Tensor  # (T, H, W, 3) uint8
    fps: float

    def save(self, path: str | Path) -> Path:
        return write_video(path, self.frames, self.fps)


class Pipeline:
    modes = {"text", "image", "extend", "connect", "loop", "edit"}

    def __init__(self, cfg: ModelConfig, vae: VideoVAE, dit: DiT, text_encoder, device: str | torch.device = "cpu"):
        self.cfg, self.device = cfg, torch.device(device)
        self.vae = vae.eval().requires_grad_(False).to(self.device)
        self.dit = dit.eval().requires_grad_(False).to(self.device)
        self.text_encoder = text_encoder
        self.memory_budget = memory_budget(self.device)  # bytes one request may use (tenku/budget.py)
        if text_encoder.dim != cfg.dit.text_dim:
            raise ValueError(f"text encoder width {text_encoder.dim} != DiT text_dim {cfg.dit.text_dim}")

    @classmethod
    def from_dir(cls, path: str | Path, device: str | torch.device = "cpu") -> "Pipeline":
        path = Path(path)
        cfg = load_model_config(path)  # types and bounds checked
        check_before_build(lambda: VideoVAE(cfg.vae), path / "vae.safetensors")
        check_before_build(lambda: DiT(cfg.dit), path / "dit.safetensors")
        vae, dit = VideoVAE(cfg.vae), DiT(cfg.dit)
        load_state(vae, path / "vae.safetensors")
        load_state(dit, path / "dit.safetensors")
        return cls(cfg, vae, dit, load_text_encoder(cfg.text_encoder, cfg.text_max_length, device), device)

    # ---- sizes
    @property
    def spatial_stride(self) -> int:
        """Pixels per token side: VAE compression x DiT patch (e.g. 8 x 2 = 16)."""
        return self.cfg.vae.spatial_compression * self.cfg.dit.patch_size[1]

    def check_size(self, frames: int, height: int, width: int, given_frames: int = 0) -> tuple[int, int, int]:
        """Latent grid (T', h, w) for a pixel size, or a ValueError that names the nearest valid values, the
        upper limit, or the memory the size would need (an upper estimate, with `given_frames` input frames)."""
        pt = self.cfg.dit.patch_size[0]
        s = self.spatial_stride
        errors = []
        for name, v, hi in (("frames", frames, MAX_VIDEO_FRAMES), ("height", height, MAX_SIDE), ("width", width, MAX_SIDE)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"{name} must be an integer, got {v!r}")
            if v > hi:
                errors.append(f"{name} must be at most {hi} (got {v})")
        if errors:
            raise ValueError("; ".join(errors))
        if frames < 1 or (frames - 1) % 4 or ((frames - 1) // 4 + 1) % pt:
            ok = lambda n: (n - 1) % 4 == 0 and ((n - 1) // 4 + 1) % pt == 0
            errors.append(f"frames must be 1 + 4k (got {frames}; nearest valid: {nearest_valid(int(frames), ok, 1)})")
        for name, v in (("height", height), ("width", width)):
            if v < s or v % s:
                near = nearest_valid(int(v), lambda n: n % s == 0, s)
                errors.append(f"{name} must be a positive multiple of {s} (got {v}; nearest valid: {near})")
        if errors:
            raise ValueError("; ".join(errors))
        check_budget(self.cfg, frames, height, width, self.memory_budget, given_frames)
        return (frames - 1) // 4 + 1, height // self.cfg.vae.spatial_compression, width // self.cfg.vae.spatial_compression

    def frames_for_seconds(self, seconds: float, fps: float) -> int:
        """The valid frame count (1 + 4k, at least 5: a duration asks for a video) closest to `seconds`."""
        check_number("fps", fps, 0.1, 240)
        check_number("seconds", seconds, 1e-3, MAX_VIDEO_FRAMES / fps, why=f"the longest video is {MAX_VIDEO_FRAMES} frames")
        k = max(1, round((seconds * fps - 1) / 4))
        return 1 + 4 * k

    # ---- generation
    def options(self, fps=None, steps=None, guidance=None, sampler=None) -> tuple[float, int, float, str]:
        """(fps, steps, guidance, sampler): the model's default for each option left None, every one checked.
        0 is a value like any other (refused where it is out of range), never a request for the default."""
        d = self.cfg.sample
        fps = d.fps if fps is None else fps
        steps = d.steps if steps is None else steps
        guidance = d.guidance if guidance is None else guidance
        sampler = d.sampler if sampler is None else sampler
        check_number("fps", fps, 0.1, 240)
        check_number("steps", steps, 1, 1000, integer=True)
        check_number("guidance", guidance, 0, 100)
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
        return fps, int(steps), guidance, sampler

    def _defaults(self, frames, height, width, fps, steps, guidance, sampler):
        d = self.cfg.sample
        fps, steps, guidance, sampler = self.options(fps, steps, guidance, sampler)
        height, width = (d.height if height is None else height), (d.width if width is None else width)
        return frames, height, width, fps, steps, guidance, sampler

    def encode_prompt(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty string")
        text, mask = self.text_encoder.encode([prompt])
        return text.to(self.device), mask.to(self.device)

    def sample_latents(self, prompt: str, latent_frames: int, h: int, w: int, steps: int, guidance: float,
                       sampler: str, seed: int, plan: Plan | None = None, x_start: torch.Tensor | None = None,
                       t_start: float = 1.0, callback=None) -> torch.Tensor:
        """Run the sampler for one clip of latents (1, C, T', h, w); given frames in `plan` stay exact."""
        text, text_mask = self.encode_prompt(prompt)
        # Noise from the seed alone (CPU generator, so the same seed gives the same video on any device).
        g = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(1, self.cfg.vae.latent_channels, latent_frames, h, w, generator=g).to(self.device)
        if x_start is not None:  # editing: start part-way along the path from the given latents
            noise = flow.interpolate(x_start, noise, torch.tensor([t_start], device=self.device))
        cond = Conditioning(plan.given, plan.mask) if plan is not None and plan.mask is not None else None
        if cond is None and x_start is None and latent_frames > 1 and self.cfg.sample.two_stage:
            cond = self._first_frame(noise, text, text_mask, steps, guidance, sampler)
        shift = flow.shift_for_tokens(self.dit.num_tokens(latent_frames, h, w), self.cfg.flow)
        velocity = GuidedVelocity(self.dit, text, text_mask, guidance, cond)
        return sample(velocity, noise, steps, shift, sampler, cond=cond, t_start=t_start, callback=callback)

    def _first_frame(self, noise, text, text_mask, steps, guidance, sampler) -> Conditioning:
        """Two-stage text-to-video (Emu Video's factorisation): latent frame 0 sampled as an image (a one-frame
        video) from the text, then given to the second stage, which only has to animate it."""
        shift = flow.shift_for_tokens(self.dit.num_tokens(1, *noise.shape[-2:]), self.cfg.flow)
        first = sample(GuidedVelocity(self.dit, text, text_mask, guidance), noise[:, :, :1], steps, shift, sampler)
        given = torch.zeros_like(noise)
        given[:, :, :1] = first  # (1, C, 1, h, w) of (1, C, T', h, w)
        mask = torch.zeros(1, noise.shape[2], dtype=torch.bool, device=noise.device)
        mask[:, 0] = True
        return Conditioning(given, mask)

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """(1, C, T', h, w) normalised latents -> (T, H, W, 3) uint8."""
        return tensor_to_frames(self.vae.decode(self.vae.denormalize(z))[0])

    @torch.inference_mode()
    def generate(self, prompt: str, frames: int | None = None, height: int | None = None, width: int | None = None,
                 fps: float | None = None, steps: int | None = None, guidance: float | None = None,
                 sampler: str | None = None, seed: int = 0, callback: Callable[[int, int], None] | None = None,
                 image=None, last_image=None, extend=None, direction: str = "forward", connect=None,
                 loop: bool = False, edit=None, strength: float = 0.6) -> Video:
        """Generate one video. Unset options take the model's defaults (config.json "sample").

        Modes (inputs are file paths or uint8 frames (T, H, W, 3)); given frames are kept exactly:
          image / last_image  first and/or last frame given; `frames` is the whole length
          extend + direction  "forward": continue after the video; "backward": what came before it;
                              `frames` new frames (rounded up to the 4-frame latent grid)
          connect=(a, b)      a transition of `frames` new frames (rounded up likewise) so that a flows into b
          loop                the clip, then a transition back into its first frame
          edit + strength     re-generate a video from a new prompt, keeping layout and motion at low strength
        Sizes default to the inputs' own size.
        """
        modes = [m for m, on in (("image", image is not None or last_image is not None), ("extend", extend is not None),
                                 ("connect", connect is not None), ("loop", loop), ("edit", edit is not None)) if on]
        if len(modes) > 1:
            raise ValueError(f"choose one mode, got {' + '.join(modes)}")
        sources = {name: src for name, src in (("image", image), ("last image", last_image), ("extend", extend),
                                                ("edit", edit)) if src is not None}
        if connect is not None:
            if len(connect) != 2:
                raise ValueError("connect takes two videos (a, b)")
            sources["connect a"], sources["connect b"] = connect
        # 1. Sizes from the inputs' headers (the inputs' size unless asked otherwise; all must agree), and
        # every option checked, before anything is decoded: a huge or mismatched input costs nothing.
        peeked = {name: _peek(src, name) for name, src in sources.items()}  # (frames or None, H, W)
        if peeked:
            _, h0, w0 = next(iter(peeked.values()))
            height, width = (h0 if height is None else height), (w0 if width is None else width)
        frames, height, width, fps, steps, guidance, sampler = self._defaults(
            frames, height, width, fps, steps, guidance, sampler)
        for name, (_, h, w) in peeked.items():
            check_frame_size((h, w), height, width, name)
        if peeked:
            self.check_size(1, height, width, sum(n or MAX_INPUT_FRAMES for n, _, _ in peeked.values()))
        # 2. Decode the inputs.
        inputs = {name: load_frames(src, name, MAX_INPUT_FRAMES) for name, src in sources.items()}
        for name, f in inputs.items():
            check_frame_size(f.shape[1:3], height, width, name)
        cond = Conditioner(self.vae, self.device)
        args = dict(steps=steps, guidance=guidance, sampler=sampler, seed=seed, callback=callback)

        if edit is not None:
            if not 0.0 < strength <= 1.0:
                raise ValueError(f"strength must be in (0, 1], got {strength}")
            src = inputs["edit"][: valid_prefix(len(inputs["edit"]))]
            T, h, w = self.check_size(len(src), height, width)
            z = self.sample_latents(prompt, T, h, w, x_start=cond.encode(src), t_start=strength, **args)
            return Video(self.decode_latents(z), fps)
        if extend is not None or connect is not None:
            if direction not in ("forward", "backward"):
                raise ValueError(f"direction must be 'forward' or 'backward', got {direction!r}")
            forward = connect is not None or direction == "forward"
            backward = connect is not None or direction == "backward"
            head_px = (inputs["connect a"] if connect is not None else inputs["extend"]) if forward else None
            tail_px = (inputs["connect b"] if connect is not None else inputs["extend"]) if backward else None
            new = self.cfg.sample.frames - 1 if frames is None else frames
            return self._bridge(prompt, new, head_px, tail_px, height, width, fps, cond, args)

        frames = self.cfg.sample.frames if frames is None else frames
        T, h, w = self.check_size(frames, height, width, sum(len(f) for f in inputs.values()))
        plan = None
        if image is not None or last_image is not None:
            img = inputs["image"][:1] if image is not None else None
            last = inputs["last image"][-1:] if last_image is not None else None
            plan = cond.plan(T, None if img is None else cond.encode(img),
                             None if last is None else cond.tail_latents(last)[0], img, last)
        z = self.sample_latents(prompt, T, h, w, plan=plan, **args)
        out = self.decode_latents(z)
        if plan is not None:
            out = plan.assemble(out)
        if loop:
            # A transition from the clip's end back into its first frame, generated as a connection;
            # the loop is the clip followed by the transition (its last frame flows into frame 0).
            args["seed"] = seed + 1
            bridge = self._bridge(prompt, max(4, frames // 2), out.numpy(), out.numpy(), height, width, fps, cond, args)
            out = bridge.frames[: len(bridge.frames) - len(out)]
        return Video(out, fps)

    def _bridge(self, prompt, new, head_px, tail_px, height, width, fps, cond, args) -> Video:
        """Generate `new` frames after head_px and/or before tail_px; the given videos are kept whole.

        Latent layout: [head latents | m new | tail group latents]. Frames of the inputs that do not fill a
        whole latent (head frames past its 1 + 4k prefix, tail frames before its last 4k) are generated
        under them and replaced by the originals, so `new` is rounded up to fill the grid exactly.
        """
        if new < 1:
            raise ValueError(f"ask for at least one new frame, got {new}")
        head, n_head = cond.head_latents(head_px) if head_px is not None else (None, 0)
        tail, n_tail = cond.tail_latents(tail_px) if tail_px is not None else (None, 0)
        extra_head = len(head_px) - n_head if head_px is not None else 0  # given frames generated "under" new ones
        extra_tail = len(tail_px) - n_tail if tail_px is not None else 0
        free = extra_head + new + extra_tail  # pixel frames between the exact head and tail latents
        if head is None:
            free -= 1  # the first latent frame is a single frame
        m = max(1, -(-free // 4))
        T = (head.shape[2] if head is not None else 1) + m + (tail.shape[2] if tail is not None else 0)
        total = 1 + 4 * (T - 1)
        self.check_size(total, height, width, (len(head_px) if head_px is not None else 0) +
                        (len(tail_px) if tail_px is not None else 0))
        h, w = height // self.cfg.vae.spatial_compression, width // self.cfg.vae.spatial_compression
        plan = cond.plan(T, head, tail)
        out = self.decode_latents(self.sample_latents(prompt, T, h, w, plan=plan, **args))  # (total, H, W, 3)
        gen = out[n_head: total - n_tail]  # frames not covered by exact latents
        gen = gen[extra_head: len(gen) - extra_tail]  # minus the inputs' leftovers, which are pasted back
        parts = ([torch.from_numpy(head_px)] if head_px is not None else []) + [gen] + (
            [torch.from_numpy(tail_px)] if tail_px is not None else [])
        return Video(torch.cat(parts), fps)


def _peek(src, name: str) -> tuple[int | None, int, int]:
    """(frames or None, height, width) of a file from its header, or of frames already in memory."""
    if isinstance(src, (str, Path)):
        return peek_media(src)
    f = load_frames(src, name)
    return len(f), f.shape[1], f.shape[2]


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
