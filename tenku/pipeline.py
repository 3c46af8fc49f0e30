"""A GenerateRequest -> video: the one code path shared by the CLI, the server, the web page and notebooks.

The request is validated here (tenku/request.py, with this model's config and this device's memory), and
the pipeline alone decides how it is made: one clip, or a sliding window over time (tenku/long_video.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from tenku import flow, long_video
from tenku.budget import memory_budget
from tenku.checkpoint import load_model_dir
from tenku.config import ModelConfig
from tenku.models.dit import DiT
from tenku.conditioning import Conditioner, Plan, check_frame_size, load_frames, valid_prefix
from tenku.data.clips import spatial_stride
from tenku.request import MAX_INPUT_FRAMES, Checked, GenerateRequest, check_size
from tenku.flow.sampler import Conditioning, GuidedVelocity, sample
from tenku.models.text import text_encoder_for
from tenku.models.vae import VideoVAE
from tenku.data.video_io import VideoWriter, tensor_to_frames, write_video
from tenku.models.wan import is_diffusers_folder, load_wan
from tenku.precision import autocast, use_bf16

DEFAULT_MODEL = Path(__file__).parent / "assets" / "world-xs"
# Clips up to this many pixels (frames x height x width; the default 17 x 64 x 64 is 69,632) are decoded in one
# pass: the same numbers as one latent frame at a time, in about half the time, for at most a few hundred MB.
# Longer or larger clips decode chunk by chunk, in constant memory (tenku/budget.py counts one chunk).
WHOLE_DECODE_PIXELS = 2**17
Callback = Callable[[int, int], None]  # callback(step, total) after every sampler step


@dataclass
class Video:
    frames: torch.Tensor  # (T, H, W, 3) uint8
    fps: float

    def save(self, path: str | Path) -> Path:
        return write_video(path, self.frames, self.fps)


class Pipeline:
    modes = {"text", "image", "extend", "connect", "loop", "edit"}

    def __init__(self, cfg: ModelConfig, vae: VideoVAE, dit: DiT, text_encoder, device: str | torch.device = "cpu",
                 precision: str = "fp32"):
        """`precision`: the DiT's arithmetic while sampling ("fp32", "bf16" autocast, or "auto": bf16 where the
        hardware multiplies it natively, tenku/precision.py); the VAE and the sampler's state stay fp32."""
        self.cfg, self.device = cfg, torch.device(device)
        self.vae = vae.eval().requires_grad_(False).to(self.device)
        self.dit = dit.eval().requires_grad_(False).to(self.device)
        self.net: torch.nn.Module = self.dit  # what the sampler calls: the DiT, or its compiled form (compile())
        self.bf16 = use_bf16(precision, self.device)
        self.text_encoder = text_encoder
        self.memory_budget = memory_budget(self.device)  # bytes one request may use (tenku/budget.py)
        if text_encoder.dim != cfg.dit.text_dim:
            raise ValueError(f"text encoder width {text_encoder.dim} != DiT text_dim {cfg.dit.text_dim}")

    @classmethod
    def from_dir(cls, path: str | Path, device: str | torch.device = "cpu",
                 prompt_cache: str | Path | None = None, precision: str = "fp32") -> "Pipeline":
        """A Tenku model directory, or a Wan 2.1 folder in the diffusers layout (mapped by tenku/models/wan.py).
        `prompt_cache`: a folder that keeps prompts' text states between processes (tenku/models/prompt_cache.py)."""
        path = Path(path)
        if is_diffusers_folder(path):
            cfg, vae, dit = load_wan(path)
        else:
            cfg, vae, dit = load_model_dir(path, device=device)  # config and weight shapes checked before loading
        return cls(cfg, vae, dit, text_encoder_for(cfg, device, prompt_cache), device, precision)

    def apply_lora(self, path: str | Path, scale: float = 1.0) -> "Pipeline":
        """Fold a LoRA adapter folder (tenku/models/lora.py) into the transformer: `scale` times its change."""
        from tenku.models.lora import merge_lora

        self.dit = self.net = merge_lora(self.dit, path, scale).to(self.device).eval()
        return self

    def compile(self) -> "Pipeline":
        """Sample through `torch.compile` of the DiT (inductor; tenku/train/compile.py, eager if compiling fails):
        for a process that generates many clips (the server). Each new clip size compiles once (tens of seconds
        on a CPU), so a single `tenku generate` is faster without it."""
        from tenku.train.compile import MaybeCompiled

        self.net = MaybeCompiled(self.dit)
        return self

    # ---- sizes
    @property
    def spatial_stride(self) -> int:
        """Pixels per token side: VAE compression x DiT patch (e.g. 8 x 2 = 16)."""
        return spatial_stride(self.cfg)

    def check_size(self, frames: int, height: int, width: int, given_frames: int = 0) -> tuple[int, int, int]:
        """Latent grid (T', h, w) of one clip, or a ValueError naming the nearest valid values, the upper limit,
        or the memory the clip would need here (an upper estimate, with `given_frames` input frames)."""
        return check_size(self.cfg, frames, height, width, self.memory_budget, given_frames)

    # ---- requests
    def check(self, request: GenerateRequest) -> Checked:
        """The request validated for this model and this device's memory: every option resolved, and one clip
        or a window plan. A RequestError (a ValueError) names what to change."""
        return request.validate(self.cfg, self.memory_budget)

    def stream(self, request: GenerateRequest, callback: Callback | None = None) -> Iterator[torch.Tensor]:
        """Validates now, then yields the video as it is made: (T, H, W, 3) uint8, one clip or window by window.
        callback(step, total) counts sampler steps over the whole video."""
        return self._stream(self.check(request), callback)

    def _stream(self, checked: Checked, callback: Callback | None) -> Iterator[torch.Tensor]:
        if checked.windows is None:
            yield self.generate_clip(checked.request, checked.shots[0].prompt, callback)
        else:
            yield from long_video.windows(self, checked, callback)

    def run(self, request: GenerateRequest, callback: Callback | None = None) -> Video:
        """Generate the video in memory (`save` streams a long one into a file instead)."""
        checked = self.check(request)
        return Video(torch.cat(list(self._stream(checked, callback))), checked.request.fps)

    def save(self, request: GenerateRequest, path: str | Path, callback: Callback | None = None) -> int:
        """Generate into `path` (an mp4, written as the frames are made, so memory does not grow with the length;
        or a .png for one frame); returns the number of frames. The file appears whole or not at all."""
        checked, path = self.check(request), Path(path)
        if path.suffix.lower() == ".png":
            frames = torch.cat(list(self._stream(checked, callback)))
            write_video(path, frames, checked.request.fps)  # refuses more than one frame
            return len(frames)
        with VideoWriter(path, checked.request.fps) as writer:
            for frames in self._stream(checked, callback):
                writer.write(frames)
        return writer.frames_written

    def generate(self, prompt: str, *, callback: Callback | None = None, **kwargs) -> Video:
        """`run` with keywords: `image=` / `last_image=`, `extend=` (+ `direction=`), `connect=(a, b)`, `loop=True`
        or `edit=` (+ `strength=`) choose the mode (GenerateRequest.from_inputs); the others are GenerateRequest
        fields (frames, seconds, height, width, fps, steps, guidance, sampler, seed, window, history)."""
        return self.run(GenerateRequest.from_inputs(prompt, **kwargs), callback)

    # ---- generation
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
        with autocast(self.device, self.bf16):  # the DiT's matmuls only: the sampler adds in fp32
            if cond is None and x_start is None and latent_frames > 1 and self.cfg.sample.two_stage:
                cond = self._first_frame(noise, text, text_mask, steps, guidance, sampler)
            shift = flow.shift_for_tokens(self.dit.num_tokens(latent_frames, h, w), self.cfg.flow)
            if cond is not None and self.cfg.flow.given_noise > 0:  # as training saw given frames (FlowConfig)
                cond = Conditioning(cond.latents, cond.mask, flow.given_t(self.cfg.flow),
                                    torch.randn(noise.shape, generator=g).to(self.device))
            velocity = GuidedVelocity(self.net, text, text_mask, guidance, cond, self._null_text())
            return sample(velocity, noise, steps, shift, sampler, cond=cond, t_start=t_start, callback=callback)

    def _first_frame(self, noise, text, text_mask, steps, guidance, sampler) -> Conditioning:
        """Two-stage text-to-video (Emu Video's factorisation): latent frame 0 sampled as an image (a one-frame
        video) from the text, then given to the second stage, which only has to animate it."""
        shift = flow.shift_for_tokens(self.dit.num_tokens(1, *noise.shape[-2:]), self.cfg.flow)
        image_guidance = self.cfg.sample.image_guidance
        guidance = guidance if image_guidance is None else image_guidance  # SampleConfig.image_guidance
        first = sample(GuidedVelocity(self.net, text, text_mask, guidance, null_text=self._null_text()),
                       noise[:, :, :1], steps, shift, sampler)
        given = torch.zeros_like(noise)
        given[:, :, :1] = first  # (1, C, 1, h, w) of (1, C, T', h, w)
        mask = torch.zeros(1, noise.shape[2], dtype=torch.bool, device=noise.device)
        mask[:, 0] = True
        return Conditioning(given, mask)

    def _null_text(self):
        """Guidance's unconditional text: None (flow.null_text) or, for a Wan model, its encoded negative prompt."""
        null = self.text_encoder.null_text(1)
        return None if null is None else tuple(t.to(self.device) for t in null)

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """(1, C, T', h, w) normalised latents -> (T, H, W, 3) uint8."""
        s = self.cfg.vae.spatial_compression
        pixels = self.vae.pixel_frames(z.shape[2]) * z.shape[3] * s * z.shape[4] * s
        return tensor_to_frames(self.vae.decode(self.vae.denormalize(z), chunked=pixels > WHOLE_DECODE_PIXELS)[0])

    @torch.inference_mode()
    def generate_clip(self, req: GenerateRequest, prompt: str, callback: Callback | None = None) -> torch.Tensor:
        """One clip of a validated request (`Checked.request`, every option resolved) -> (T, H, W, 3) uint8.
        `prompt` is the clip's own (a storyboard's shot); given frames are kept exactly."""
        # 1. Decode the given media (validate read their headers; the frames must agree with them).
        inputs = {name: load_frames(src, name, MAX_INPUT_FRAMES) for name, src in req.inputs().items()}
        for name, f in inputs.items():
            check_frame_size(f.shape[1:3], req.height, req.width, name)
        cond = Conditioner(self.vae, self.device)
        args = dict(steps=req.steps, guidance=req.guidance, sampler=req.sampler, seed=req.seed, callback=callback)
        size = (req.height, req.width)
        # 2. Every mode is given latent frames held clean while the rest are sampled (tenku/conditioning.py).
        if req.mode == "edit":
            return self._edit(prompt, inputs["video"], req, cond, args)
        if req.mode == "extend":
            head, tail = (inputs["video"], None) if req.direction == "forward" else (None, inputs["video"])
            return self._bridge(prompt, req.frames, head, tail, size, cond, args)
        if req.mode == "connect":
            return self._bridge(prompt, req.frames, inputs["video_a"], inputs["video_b"], size, cond, args)
        out = self._first_last(prompt, req.frames, inputs.get("image"), inputs.get("last_image"), size, cond, args)
        if req.mode == "loop":
            # A transition from the clip's end back into its first frame, generated as a connection;
            # the loop is the clip followed by the transition (its last frame flows into frame 0).
            args["seed"] = req.seed + 1
            bridge = self._bridge(prompt, max(4, req.frames // 2), out.numpy(), out.numpy(), size, cond, args)
            out = bridge[: len(bridge) - len(out)]
        return out

    def _first_last(self, prompt, frames, image, last_image, size, cond, args) -> torch.Tensor:
        """Text-to-video, with the first and/or last frame given (image-to-video, interpolation)."""
        T, h, w = self.check_size(frames, *size, sum(len(f) for f in (image, last_image) if f is not None))
        plan = None
        if image is not None or last_image is not None:
            img = image[:1] if image is not None else None
            last = last_image[-1:] if last_image is not None else None
            plan = cond.plan(T, None if img is None else cond.encode(img),
                             None if last is None else cond.tail_latents(last)[0], img, last)
        out = self.decode_latents(self.sample_latents(prompt, T, h, w, plan=plan, **args))
        return plan.assemble(out) if plan is not None else out

    def _edit(self, prompt, video, req, cond, args) -> torch.Tensor:
        """SDEdit: start part-way along the path from the video's latents (t = strength) and sample to 0."""
        frames = valid_prefix(len(video)) if req.frames is None else req.frames
        if frames > len(video):
            raise ValueError(f"edit: frames ({frames}) is more than the video's {len(video)} frames")
        src = video[:frames]
        T, h, w = self.check_size(len(src), req.height, req.width)
        z = self.sample_latents(prompt, T, h, w, x_start=cond.encode(src), t_start=req.strength, **args)
        return self.decode_latents(z)

    def _bridge(self, prompt, new, head_px, tail_px, size, cond, args) -> torch.Tensor:
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
        _, h, w = self.check_size(total, *size, (len(head_px) if head_px is not None else 0) +
                                  (len(tail_px) if tail_px is not None else 0))
        plan = cond.plan(T, head, tail)
        out = self.decode_latents(self.sample_latents(prompt, T, h, w, plan=plan, **args))  # (total, H, W, 3)
        gen = out[n_head: total - n_tail]  # frames not covered by exact latents
        gen = gen[extra_head: len(gen) - extra_tail]  # minus the inputs' leftovers, which are pasted back
        parts = ([torch.from_numpy(head_px)] if head_px is not None else []) + [gen] + (
            [torch.from_numpy(tail_px)] if tail_px is not None else [])
        return torch.cat(parts)  # (T, H, W, 3) uint8


def load_pipeline(path: str | Path | None = None, device: str | torch.device = "cpu",
                  prompt_cache: str | Path | None = None, precision: str = "fp32") -> Pipeline:
    """Load a model directory; None loads the default model shipped inside the package. `prompt_cache`: see
    Pipeline.from_dir (`tenku generate` passes tenku.models.prompt_cache.default_dir()); `precision`: Pipeline."""
    if path is None:
        if not (DEFAULT_MODEL / "config.json").is_file():
            raise FileNotFoundError(
                f"no default model at {DEFAULT_MODEL}; pass a model directory (create a random one with"
                " `tenku init-model --preset tiny DIR`)")
        path = DEFAULT_MODEL
    return Pipeline.from_dir(path, device, prompt_cache, precision)


def init_model(path: str | Path, preset_name: str = "tiny", seed: int = 0) -> Path:
    """Write a randomly initialised model directory (for tests and as a training starting point)."""
    from tenku.checkpoint import init_model_dir
    from tenku.config import preset

    return init_model_dir(path, preset(preset_name), seed)
