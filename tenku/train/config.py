"""TrainConfig: one dataclass for a training run, named presets, and one way to override its fields.

Every source of a value goes through `apply` (field name -> a YAML value or a command-line string, read as the
field's type): a YAML recipe (`--config run.yaml`, a flat mapping of field names), then `--set key=value`
flags, then the command line's own flags, which are generated from the fields (`--batch-size 8`, see
`add_arguments`); later wins, each over a preset (`TRAIN_PRESETS`, TrainConfig instances). Unknown keys and
values of the wrong type raise ValueError naming the key and what is valid. The options are checked again
against the ModelConfig they build (`model_config`), so `vae_crop` is checked against `init_from`'s model and
`model_overrides` too. The resolved config is written to the run folder as config.json, so a run can always be
reproduced from that file alone.

Model architecture changes go through `model_overrides`, a nested mapping merged into the ModelConfig preset,
e.g. `--set model_overrides='{"dit": {"num_layers": 4}, "flow": {"text_dropout": 0.2}}'` or, shorter,
`--set model.dit.num_layers=4`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import inspect
import io
import re
import tokenize
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tenku.precision import PRECISIONS
from tenku.train.cond_mask import COND_MODES
from tenku.config import PRESETS as MODEL_PRESETS
from tenku.config import ModelConfig, preset as model_preset


def _default_cond_probs() -> dict[str, float]:
    # Mostly text-to-video; the rest teaches image-to-video, extension both ways and connecting.
    return {"none": 0.5, "first": 0.2, "first_k": 0.1, "last": 0.1, "first_last": 0.05, "middle": 0.05}


@dataclass
class TrainConfig:
    """Everything one `tenku train vae|dit` run needs. Every field can be set by YAML, --set or its own flag."""

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
    steps: int = 1000  # total optimizer steps
    batch_size: int = 4  # per process
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-4  # peak learning rate (AdamW)
    min_lr_ratio: float = 0.1  # cosine floor as a fraction of lr
    warmup_steps: int = 100  # linear warm-up from 0 to lr over these steps
    schedule: str = "cosine"  # "cosine" or "constant" (after warm-up)
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    beta1: float = 0.9  # AdamW's first-moment decay
    beta2: float = 0.99  # AdamW's second-moment decay
    grad_clip: float = 1.0  # max grad norm; 0 = off
    ema_decay: float = 0.999  # 0 = no EMA
    precision: str = "auto"  # "auto" (bf16 autocast where native: tenku/precision.py), "fp32", "bf16"
    strategy: str = "ddp"  # under torchrun: "ddp" or "fsdp" (FSDP2, one shard unit per DiT block)
    device: str = "auto"  # "auto", "cpu", "cuda"
    seed: int = 0  # model init, data order and every training RNG (offset per rank)
    num_workers: int = 0  # DataLoader worker processes
    max_train_minutes: float = 0.0  # stop (checkpoint, export) once this much time went into training steps; 0 = off
    compile: str = "auto"  # torch.compile the training forward: "auto" (where a C compiler / Triton exists), "on", "off"

    # 3. Logging, checkpoints, samples.
    log_every: int = 10  # steps per log line (losses averaged over them)
    checkpoint_every: int = 500  # steps between checkpoints
    checkpoint_minutes: float = 30.0  # also checkpoint after this much wall time since the last one (0 = off)
    keep_last: int = 3  # checkpoints kept (older ones are deleted)
    snapshot_every: int = 0  # > 0: also export the averaged weights as snapshots/step_N model dirs, kept (tenku average)
    sample_every: int = 0  # DiT: write sample videos every N steps (0 = off)
    sample_prompts: list = field(default_factory=lambda: ["a red ball moves right on a black background"])  # previews
    eval_every: int = 0  # VAE: PSNR/SSIM on held-out clips every N steps (0 = only at the end)
    worldbench_every: int = 0  # DiT: a small WorldBench pass every N steps, logged as wb/* (0 = off)
    worldbench_count: int = 8  # clips per pass
    worldbench_steps: int = 10  # sampler steps per clip
    worldbench_split: str = "id"  # world split of the pass (tenku.worldbench.truth.SPLITS)
    worldbench_mix: str = "full"  # scene mix of the pass (tenku.world.sample.MIXES)
    worldbench_animate: bool = False  # also animate each scene's true first frame, logged as wb_first/* (motion alone)
    progress: bool = True  # tqdm bar on rank 0

    # 4. Data (VAE training and DiT-from-video).
    sizes: list = field(default_factory=lambda: [[32, 32]])  # bucket (height, width) pairs
    frames: list = field(default_factory=lambda: [1, 9])  # bucket frame counts (1 + 4k; 1 = images)
    fps: float | None = None  # resample clips to this frame rate (None = the file's own)

    # 5. DiT objective.
    cond_probs: dict = field(default_factory=_default_cond_probs)  # frame-conditioning mode probabilities
    per_frame_t: bool = False  # diffusion forcing: independent noise level per latent frame
    lora_rank: int = 0  # > 0: train LoRA adapters of this rank on a frozen init_from DiT (tenku/models/lora.py)
    lora_alpha: float = 0.0  # adapter scale numerator (0 = the rank, i.e. scale 1)

    # 6. VAE objective.
    kl_weight: float = 1e-6  # weight of the KL term that keeps latents near N(0, 1)
    vae_crop: int = 0  # train on random square crops of this side (0 = whole frames); a multiple of the VAE's stride
    freq_weight: float = 0.5  # multi-scale Laplacian + FFT-magnitude term (no downloaded network)
    fg_weight: float = 0.0  # extra L1 weight on foreground pixels (far from the frame's median colour)
    adv_weight: float = 0.0  # hinge patch-discriminator loss; 0 = off
    adv_start: int = 0  # step at which the adversarial term starts
    disc_lr: float = 1e-4  # the discriminator's learning rate (constant)
    # "all", or "decoder": the encoder is frozen, so the latent space (and its statistics) that a DiT was trained on
    # stays exactly as it is while the decoder keeps improving the reconstructions (fine-tune with init_from).
    vae_train: str = "all"
    val_clips: int = 4  # clips held out of the manifest for PSNR/SSIM when val_data is None
    stats_clips: int = 16  # training clips encoded to measure the latent mean/std

    def __post_init__(self):
        check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def model_config(self) -> ModelConfig:
        """The ModelConfig this run builds (the preset or init_from's config, plus model_overrides), checked
        against the training options."""
        if self.init_from:
            from tenku.checkpoint import load_model_config

            base = load_model_config(self.init_from).to_dict()
        else:
            base = model_preset(self.model).to_dict()
        cfg = ModelConfig.from_dict(_merge(base, self.model_overrides, "model_overrides"))
        cfg.dit.in_channels = cfg.dit.out_channels = cfg.vae.latent_channels
        check_model(self, cfg)
        return cfg


def check_fields(cfg: TrainConfig) -> None:
    """Each option on its own: choices, ranges, frame counts; ValueError naming the option."""
    def one_of(name, options):
        if getattr(cfg, name) not in options:
            raise ValueError(f"{name} must be one of {list(options)}, got {getattr(cfg, name)!r}")

    one_of("task", ("vae", "dit"))
    one_of("schedule", ("cosine", "constant"))
    one_of("precision", PRECISIONS)
    one_of("vae_train", ("all", "decoder"))
    one_of("strategy", ("ddp", "fsdp"))
    one_of("compile", ("auto", "on", "off"))
    if cfg.model not in MODEL_PRESETS:
        raise ValueError(f"model must be a preset in {sorted(MODEL_PRESETS)}, got {cfg.model!r}")
    for name in ("steps", "batch_size", "grad_accum", "log_every", "checkpoint_every", "keep_last"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.snapshot_every < 0:
        raise ValueError(f"snapshot_every must be >= 0 (0 = off), got {cfg.snapshot_every}")
    if not cfg.checkpoint_minutes >= 0:
        raise ValueError(f"checkpoint_minutes must be >= 0 (0 = off), got {cfg.checkpoint_minutes}")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {cfg.ema_decay}")
    unknown = set(cfg.cond_probs) - set(COND_MODES)
    if unknown or any(v < 0 for v in cfg.cond_probs.values()) or sum(cfg.cond_probs.values()) <= 0:
        raise ValueError(f"cond_probs needs non-negative weights over {list(COND_MODES)}, got {cfg.cond_probs}")
    for f in cfg.frames:
        if int(f) < 1 or (int(f) - 1) % 4:
            raise ValueError(f"frames entries must be 1 + 4k, got {f}")
    if cfg.vae_train == "decoder" and (cfg.task != "vae" or not cfg.init_from):
        raise ValueError("vae_train 'decoder' needs task vae and init_from (the VAE whose encoder stays frozen)")
    if cfg.lora_rank and (cfg.task != "dit" or not cfg.init_from or not 1 <= cfg.lora_rank <= 1024):
        raise ValueError(f"lora_rank {cfg.lora_rank} needs task dit, init_from (the frozen model to adapt) and a"
                         " rank in 1..1024")


def check_model(cfg: TrainConfig, mcfg: ModelConfig) -> None:
    """The options that depend on the model the run builds (after init_from and model_overrides)."""
    stride = mcfg.vae.spatial_compression
    if cfg.vae_crop < 0 or cfg.vae_crop % stride:
        raise ValueError(f"vae_crop must be 0 (whole frames) or a multiple of the VAE's stride {stride},"
                         f" got {cfg.vae_crop}")


# Named presets, visible in one dict. The model size comes from tenku.config.PRESETS.
TRAIN_PRESETS: dict[str, TrainConfig] = {
    # Seconds on a CPU: used by the tests.
    "tiny-test": TrainConfig(model="tiny", steps=20, batch_size=2, lr=1e-3, warmup_steps=2, ema_decay=0.9, log_every=1,
                             checkpoint_every=10, keep_last=2, sizes=[[32, 32]], frames=[1, 9], val_clips=1,
                             stats_clips=2, progress=False, compile="off"),  # compiling would cost the tests more
    # A small world model on one CPU (hours): 64x64, up to 17 frames.
    "world-s-cpu": TrainConfig(model="world-s", steps=20000, batch_size=4, lr=3e-4, warmup_steps=500, ema_decay=0.999,
                               log_every=20, checkpoint_every=1000, sample_every=2000, sizes=[[64, 64]],
                               frames=[1, 9, 17]),
    # The same model on GPUs (per-GPU batch; bf16 autocast).
    "world-s-gpu": TrainConfig(model="world-s", steps=50000, batch_size=32, lr=3e-4, warmup_steps=1000,
                               ema_decay=0.9999, log_every=50, checkpoint_every=2000, sample_every=5000, num_workers=4,
                               sizes=[[64, 64], [64, 112], [112, 64]], frames=[1, 17, 33]),
    "world-b-gpu": TrainConfig(model="world-b", steps=100000, batch_size=16, lr=2e-4, warmup_steps=2000,
                               ema_decay=0.9999, log_every=50, checkpoint_every=2000, sample_every=5000, num_workers=4,
                               strategy="fsdp", sizes=[[128, 128], [128, 224], [224, 128]], frames=[1, 17, 33]),
}


# ----------------------------------------------------------------------------- the one override path

_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def parse_value(key: str, value: Any, typ: Any) -> Any:
    """`value` (a YAML value, or a command-line string) as a field of type `typ`: bool, int, float, str, list,
    dict, or one of them | None. Strings are read as YAML for lists and dicts ("[1, 9]", "{none: 1}");
    ValueError naming `key` otherwise."""
    args = typing.get_args(typ)
    base = next((a for a in args if a is not type(None)), typ)
    if type(None) in args and (value is None or str(value).strip().lower() in ("none", "null", "")):
        return None
    try:
        if isinstance(value, bool) and base in (int, float):  # True is an int to Python, not to a config
            raise ValueError
        if base is bool:
            return _BOOLS[str(value).strip().lower()]
        if base is int:
            number = float(value)  # "1e3" is an int too
            if not number.is_integer():
                raise ValueError
            return value if isinstance(value, int) else int(number)
        if base is float:
            return float(value)  # YAML reads 3e-4 (no dot) as a string
        if base is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        if base in (list, dict):
            parsed = yaml.safe_load(value) if isinstance(value, str) else value
            if isinstance(parsed, base):
                return parsed
    except (ValueError, TypeError, KeyError, OverflowError, yaml.YAMLError):
        pass
    raise ValueError(f"{key}: cannot use {value!r} as {getattr(typ, '__name__', None) or typ}")


def apply(d: dict[str, Any], values: dict[str, Any], source: str) -> dict[str, Any]:
    """Update `d` (TrainConfig fields) by `values`, each read as its field's type; keys `model.a.b` go into
    model_overrides. ValueError on unknown keys, naming `source` (a file, "--set", "flag"). Returns `d`."""
    types = typing.get_type_hints(TrainConfig)
    for key, value in values.items():
        if key.startswith("model.") and key.count(".") >= 2:
            *path, name = key.split(".")[1:]
            node = d["model_overrides"] = copy.deepcopy(d.get("model_overrides") or {})
            for p in path:
                node = node.setdefault(p, {})
            node[name] = yaml.safe_load(value) if isinstance(value, str) else value
        elif key in types:
            d[key] = parse_value(f"{source}: {key}", value, types[key])
        else:
            raise ValueError(f"{source}: unknown training option {key!r}; valid options: {', '.join(sorted(types))}")
    return d


def _merge(base: dict, over: dict, where: str) -> dict:
    """Recursive dict merge; keys must already exist in `base` (so typos are caught)."""
    out = dict(base)
    for k, v in over.items():
        if k not in base:
            raise ValueError(f"{where}: unknown key {k!r}; valid keys: {sorted(base)}")
        out[k] = _merge(base[k], v, f"{where}.{k}") if isinstance(base[k], dict) and isinstance(v, dict) else v
    return out


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
            **flags) -> TrainConfig:
    """Preset -> YAML -> --set -> flags (None = not given). Returns a TrainConfig checked against its model."""
    if preset not in TRAIN_PRESETS:
        raise ValueError(f"unknown training preset {preset!r}; choose from {sorted(TRAIN_PRESETS)}")
    d = TRAIN_PRESETS[preset].to_dict()  # a deep copy: the preset itself never changes
    if yaml_path is not None:
        apply(d, load_yaml(yaml_path), str(yaml_path))
    apply(d, sets if isinstance(sets, dict) else parse_sets(sets), "--set")
    apply(d, {k: v for k, v in flags.items() if v is not None}, "flag")
    cfg = TrainConfig(**d)
    cfg.model_config()  # raises if an option does not fit the model it builds
    return cfg


def from_dict(d: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from config.json (unknown keys are an error)."""
    return TrainConfig(**apply(TrainConfig().to_dict(), d, "config.json"))


# ----------------------------------------------------------------------------- command-line flags

# Older, shorter names some flags keep (scripts and recipes use them).
ALIASES = {"vae_from": ("--vae",), "init_from": ("--init",), "lora_rank": ("--lora",)}


def field_help(cls) -> dict[str, str]:
    """Each field's trailing comment in the class source (its documentation), as --help text."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # no source (a frozen build): flags without help
        return {}
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        name = re.match(r"\s*(\w+)\s*:", tok.line) if tok.type == tokenize.COMMENT else None
        if name:
            out.setdefault(name.group(1), tok.string.lstrip("#").strip().replace("%", "%%"))
    return out


def add_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ("task",)) -> None:
    """One flag per TrainConfig field (`lr` -> --lr, `batch_size` -> --batch-size). Flags keep their text:
    `flags(args)` hands them to `resolve`, which reads them like YAML and --set values."""
    types, helps = typing.get_type_hints(TrainConfig), field_help(TrainConfig)
    group = parser.add_argument_group("training options (TrainConfig fields; over --preset, --config and --set)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        base = next((a for a in typing.get_args(types[f.name]) if a is not type(None)), types[f.name])
        extra = {"nargs": "?", "const": "true"} if base is bool else {}  # --progress alone means true
        if base is list:  # space-separated, as in every sub-command: --sizes 64x64 48x80, --frames 1 9 17
            extra = {"nargs": "+", "metavar": "ITEM"}
        group.add_argument("--" + f.name.replace("_", "-"), *ALIASES.get(f.name, ()), dest=f.name,
                           default=argparse.SUPPRESS, help=helps.get(f.name), **{"metavar": base.__name__.upper(), **extra})


def flags(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields given on the command line, flags and positionals alike (field name -> text; a
    list flag -> its items, each HEIGHTxWIDTH -> [h, w] or read as YAML; one item in brackets is the whole list)."""
    out = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    for name, value in out.items():
        if isinstance(value, list):
            out[name] = value[0] if len(value) == 1 and value[0].lstrip().startswith("[") else [_item(v) for v in value]
    return out


def _item(text: str) -> Any:
    """One item of a list flag: "64x80" -> [64, 80] (cli_args.size), else its YAML value ("9" -> 9)."""
    from tenku.cli_args import size

    if re.fullmatch(r"\s*\d+\s*x\s*\d+\s*", text.lower()):
        try:
            return list(size(text))
        except argparse.ArgumentTypeError as e:  # "0x5": the size's own message, as a bad flag value
            raise ValueError(str(e)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
