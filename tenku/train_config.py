"""TrainConfig: one dataclass for a training run, named presets, and YAML / `--set key=value` overrides.

Resolution order (later wins): the preset -> a YAML file (`--config run.yaml`, a flat mapping of field names)
-> `--set key=value` flags -> explicit CLI flags (`--data`, `--out`, `--steps`). Unknown keys and values of
the wrong type raise ValueError naming the key and what is valid. The resolved config is written to the run
folder as config.json, so a run can always be reproduced from that file alone.

Model architecture changes go through `model_overrides`, a nested mapping merged into the ModelConfig preset,
e.g. `--set model_overrides='{"dit": {"num_layers": 4}, "flow": {"text_dropout": 0.2}}'` or, shorter,
`--set model.dit.num_layers=4`.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import PRESETS as MODEL_PRESETS
from .config import ModelConfig, preset as model_preset

# Frame-conditioning modes drawn per sample in DiT training (see train.random_cond_mask).
COND_MODES = ("none", "first", "first_k", "last", "first_last", "middle")


def _default_cond_probs() -> dict[str, float]:
    # Mostly text-to-video; the rest teaches image-to-video, extension both ways and connecting.
    return {"none": 0.5, "first": 0.2, "first_k": 0.1, "last": 0.1, "first_last": 0.05, "middle": 0.05}


@dataclass
class TrainConfig:
    """Everything one `tenku train vae|dit` run needs. Every field can be overridden by YAML or --set."""

    # 1. What to train and from where.
    task: str = "dit"  # "vae" or "dit"
    model: str = "tiny"  # a ModelConfig preset name (tenku.config.PRESETS)
    model_overrides: dict = field(default_factory=dict)  # nested ModelConfig fields merged into the preset
    init_from: str | None = None  # model directory to fine-tune (its config wins over `model`)
    vae_from: str | None = None  # DiT training: model directory whose VAE is used (latents, samples, export)
    data: str | None = None  # VAE: a clip manifest (.jsonl); DiT: a latent cache dir (or a manifest: encode on the fly)
    val_data: str | None = None  # VAE: held-out manifest for PSNR/SSIM (default: hold out `val_clips` clips)
    out: str | None = None  # run folder: config.json, checkpoints/, tensorboard/, samples/, model/

    # 2. Optimisation.
    steps: int = 1000
    batch_size: int = 4  # per process
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-4
    min_lr_ratio: float = 0.1  # cosine floor as a fraction of lr
    warmup_steps: int = 100
    schedule: str = "cosine"  # "cosine" or "constant" (after warm-up)
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # max grad norm; 0 = off
    ema_decay: float = 0.999  # 0 = no EMA
    precision: str = "auto"  # "auto" (bf16 autocast on CUDA, fp32 on CPU), "fp32" or "bf16"
    strategy: str = "ddp"  # under torchrun: "ddp" or "fsdp" (FSDP2, one shard unit per DiT block)
    device: str = "auto"  # "auto", "cpu", "cuda"
    seed: int = 0
    num_workers: int = 0  # DataLoader worker processes
    max_train_minutes: float = 0.0  # stop (checkpoint, export) once this much time went into training steps; 0 = off
    compile: str = "auto"  # torch.compile the training forward: "auto" (where a C compiler / Triton exists), "on", "off"

    # 3. Logging, checkpoints, samples.
    log_every: int = 10
    checkpoint_every: int = 500
    checkpoint_minutes: float = 30.0  # also checkpoint after this much wall time since the last one (0 = off)
    keep_last: int = 3
    sample_every: int = 0  # DiT: write sample videos every N steps (0 = off)
    sample_prompts: list = field(default_factory=lambda: ["a red ball moves right on a black background"])
    eval_every: int = 0  # VAE: PSNR/SSIM on held-out clips every N steps (0 = only at the end)
    worldbench_every: int = 0  # DiT: a small WorldBench pass every N steps, logged as wb/* (0 = off)
    worldbench_count: int = 8  # clips per pass
    worldbench_steps: int = 10  # sampler steps per clip
    worldbench_split: str = "id"
    worldbench_mix: str = "full"  # scene mix of the pass (tenku.world.sample.MIXES)
    progress: bool = True  # tqdm bar on rank 0

    # 4. Data (VAE training and DiT-from-video).
    sizes: list = field(default_factory=lambda: [[32, 32]])  # bucket (height, width) pairs
    frames: list = field(default_factory=lambda: [1, 9])  # bucket frame counts (1 + 4k; 1 = images)
    fps: float | None = None  # resample clips to this frame rate (None = the file's own)

    # 5. DiT objective.
    cond_probs: dict = field(default_factory=_default_cond_probs)  # frame-conditioning mode probabilities
    per_frame_t: bool = False  # diffusion forcing: independent noise level per latent frame

    # 6. VAE objective.
    kl_weight: float = 1e-6
    vae_crop: int = 0  # train on random square crops of this side (0 = whole frames); a multiple of the VAE's stride
    freq_weight: float = 0.5  # multi-scale Laplacian + FFT-magnitude term (no downloaded network)
    fg_weight: float = 0.0  # extra L1 weight on foreground pixels (far from the frame's median colour)
    adv_weight: float = 0.0  # hinge patch-discriminator loss; 0 = off
    adv_start: int = 0  # step at which the adversarial term starts
    disc_lr: float = 1e-4
    val_clips: int = 4  # clips held out of the manifest for PSNR/SSIM when val_data is None
    stats_clips: int = 16  # training clips encoded to measure the latent mean/std

    def __post_init__(self):
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def model_config(self) -> ModelConfig:
        """The ModelConfig this run builds: the preset (or init_from's config) plus model_overrides."""
        if self.init_from:
            from .checkpoint import load_model_config

            base = load_model_config(self.init_from).to_dict()
        else:
            base = model_preset(self.model).to_dict()
        merged = _merge(base, self.model_overrides, "model_overrides")
        cfg = ModelConfig.from_dict(merged)
        cfg.dit.in_channels = cfg.dit.out_channels = cfg.vae.latent_channels
        return cfg


def validate(cfg: TrainConfig) -> None:
    def one_of(name, options):
        if getattr(cfg, name) not in options:
            raise ValueError(f"{name} must be one of {list(options)}, got {getattr(cfg, name)!r}")

    one_of("task", ("vae", "dit"))
    one_of("schedule", ("cosine", "constant"))
    one_of("precision", ("auto", "fp32", "bf16"))
    one_of("strategy", ("ddp", "fsdp"))
    one_of("compile", ("auto", "on", "off"))
    if cfg.model not in MODEL_PRESETS:
        raise ValueError(f"model must be a preset in {sorted(MODEL_PRESETS)}, got {cfg.model!r}")
    for name in ("steps", "batch_size", "grad_accum", "log_every", "checkpoint_every", "keep_last"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if not cfg.checkpoint_minutes >= 0:
        raise ValueError(f"checkpoint_minutes must be >= 0 (0 = off), got {cfg.checkpoint_minutes}")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {cfg.ema_decay}")
    unknown = set(cfg.cond_probs) - set(COND_MODES)
    if unknown or any(v < 0 for v in cfg.cond_probs.values()) or sum(cfg.cond_probs.values()) <= 0:
        raise ValueError(f"cond_probs needs non-negative weights over {list(COND_MODES)}, got {cfg.cond_probs}")
    stride = MODEL_PRESETS[cfg.model].vae.spatial_compression
    if cfg.vae_crop < 0 or cfg.vae_crop % stride:
        raise ValueError(f"vae_crop must be 0 (whole frames) or a multiple of the VAE's stride {stride},"
                         f" got {cfg.vae_crop}")
    for f in cfg.frames:
        if int(f) < 1 or (int(f) - 1) % 4:
            raise ValueError(f"frames entries must be 1 + 4k, got {f}")


# Named presets: TrainConfig field overrides, visible in one dict. The model size comes from tenku.config.PRESETS.
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    # Seconds on a CPU: used by the tests.
    "tiny-test": dict(model="tiny", steps=20, batch_size=2, lr=1e-3, warmup_steps=2, ema_decay=0.9, log_every=1,
                      checkpoint_every=10, keep_last=2, sizes=[[32, 32]], frames=[1, 9], val_clips=1, stats_clips=2,
                      progress=False, compile="off"),  # compiling would cost the tests more than it saves
    # A small world model on one CPU (hours): 64x64, up to 17 frames.
    "world-s-cpu": dict(model="world-s", steps=20000, batch_size=4, lr=3e-4, warmup_steps=500, ema_decay=0.999,
                        log_every=20, checkpoint_every=1000, sample_every=2000, sizes=[[64, 64]], frames=[1, 9, 17]),
    # The same model on GPUs (per-GPU batch; bf16 autocast).
    "world-s-gpu": dict(model="world-s", steps=50000, batch_size=32, lr=3e-4, warmup_steps=1000, ema_decay=0.9999,
                        log_every=50, checkpoint_every=2000, sample_every=5000, num_workers=4,
                        sizes=[[64, 64], [64, 112], [112, 64]], frames=[1, 17, 33]),
    "world-b-gpu": dict(model="world-b", steps=100000, batch_size=16, lr=2e-4, warmup_steps=2000, ema_decay=0.9999,
                        log_every=50, checkpoint_every=2000, sample_every=5000, num_workers=4, strategy="fsdp",
                        sizes=[[128, 128], [128, 224], [224, 128]], frames=[1, 17, 33]),
}


# ----------------------------------------------------------------------------- overrides

def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """Turn a YAML value or a --set string into the field's type, or raise ValueError naming the key."""
    args = typing.get_args(typ)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), typ) if args else typ
    if isinstance(value, str) and optional and value.strip().lower() in ("none", "null", ""):
        return None
    if value is None:
        if optional:
            return None
        raise ValueError(f"{key} cannot be None")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            return str(value)
        if base in (list, dict):
            if isinstance(value, str):
                value = yaml.safe_load(value)
            if not isinstance(value, base):
                raise ValueError
            return value
    except (ValueError, TypeError, yaml.YAMLError):
        pass
    else:
        return value
    raise ValueError(f"{key}: cannot use {value!r} as {getattr(typ, '__name__', None) or typ}")


def _merge(base: dict, over: dict, where: str) -> dict:
    """Recursive dict merge; keys must already exist in `base` (so typos are caught)."""
    out = dict(base)
    for k, v in over.items():
        if k not in base:
            raise ValueError(f"{where}: unknown key {k!r}; valid keys: {sorted(base)}")
        out[k] = _merge(base[k], v, f"{where}.{k}") if isinstance(base[k], dict) and isinstance(v, dict) else v
    return out


def apply_overrides(d: dict[str, Any], overrides: dict[str, Any], source: str) -> dict[str, Any]:
    """Return d updated by overrides; keys `model.a.b` go into model_overrides. ValueError on unknown keys."""
    types = _field_types()
    d = dict(d)
    for key, value in overrides.items():
        if key.startswith("model.") and key.count(".") >= 2:
            path = key.split(".")[1:]
            nested = json.loads(json.dumps(d.get("model_overrides") or {}))
            node = nested
            for p in path[:-1]:
                node = node.setdefault(p, {})
            node[path[-1]] = yaml.safe_load(value) if isinstance(value, str) else value
            d["model_overrides"] = nested
            continue
        if key not in types:
            raise ValueError(f"{source}: unknown training option {key!r}; valid options: {', '.join(sorted(types))}")
        d[key] = _coerce(f"{source}: {key}", value, types[key])
    return d


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """['lr=1e-4', 'steps=10'] -> {'lr': '1e-4', 'steps': '10'}."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a mapping of training options, got {type(d).__name__}")
    return d


def resolve(preset: str = "tiny-test", yaml_path: str | Path | None = None, sets: list[str] | dict | None = None,
            **explicit) -> TrainConfig:
    """Preset -> YAML -> --set -> explicit keyword values (None = not given). Returns a validated TrainConfig."""
    if preset not in TRAIN_PRESETS:
        raise ValueError(f"unknown training preset {preset!r}; choose from {sorted(TRAIN_PRESETS)}")
    d = TrainConfig().to_dict()
    d = apply_overrides(d, TRAIN_PRESETS[preset], f"preset {preset}")
    if yaml_path is not None:
        d = apply_overrides(d, load_yaml(yaml_path), str(yaml_path))
    d = apply_overrides(d, sets if isinstance(sets, dict) else parse_sets(sets), "--set")
    d = apply_overrides(d, {k: v for k, v in explicit.items() if v is not None}, "flag")
    return TrainConfig(**d)


def from_dict(d: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from config.json (unknown keys are an error)."""
    return TrainConfig(**apply_overrides(TrainConfig().to_dict(), d, "config.json"))
