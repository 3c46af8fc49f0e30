"""Safetensors + JSON files, written atomically and read with clear errors. Nothing here unpickles.

A model directory holds:
    config.json        ModelConfig.to_dict() plus a format version
    vae.safetensors    VideoVAE state dict (latent mean/std included)
    dit.safetensors    DiT state dict
`load_model_dir` is the one way to read it (the pipeline, the latent cache, training's init_from/vae_from);
`init_model_dir` writes a random one from a seed; `state_sha256` fingerprints weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from tenku.config import ModelConfig
from tenku.models.dit import DiT
from tenku.models.vae import VideoVAE

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A model or checkpoint file is missing, truncated or does not match the model it is loaded into."""


def atomic_write(path: str | Path, write_fn) -> None:
    """Write through a temporary file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_json(path: str | Path, obj: Any) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")

    atomic_write(path, write)


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    # safetensors refuses views that share storage, so each tensor gets its own contiguous CPU copy.
    flat = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(flat, tmp, metadata=metadata))


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file, truncated or corrupted ({e})") from None


def file_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header alone (nothing is read past the header)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file, truncated or corrupted ({e})") from None


def _check_shapes(path, own: dict[str, tuple], stored: dict[str, tuple]) -> None:
    """CheckpointError naming the file and every key or shape that differs between model and file."""
    missing = sorted(set(own) - set(stored))
    unexpected = sorted(set(stored) - set(own))
    shapes = [f"{k}: file {stored[k]} vs model {own[k]}" for k in own if k in stored and stored[k] != own[k]]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if shapes:
            parts.append(f"shape mismatch {shapes[:5]}{' ...' if len(shapes) > 5 else ''}")
        raise CheckpointError(f"{path} does not match the model in config.json: " + "; ".join(parts))


def build_on_meta(build, path: str | Path) -> torch.nn.Module:
    """Build the module on the meta device (shapes only: no memory, no random init kept) and compare it with
    the file's header, so a config that does not match its weights fails before anything is allocated.
    `load_state` then gives the module the file's tensors as its own."""
    with torch.device("meta"):
        module = build()
    _check_shapes(path, {k: tuple(v.shape) for k, v in module.state_dict().items()}, file_shapes(path))
    return module


def load_state(module: torch.nn.Module, path: str | Path, device: str | torch.device = "cpu", adapt=None) -> None:
    """Load a safetensors state dict into `module`, naming the file and every key or shape that differs.
    `adapt(state, own)`, if given, maps the file's tensors onto the module's first (e.g. vae.fold_time_taps).
    A module on the meta device (`build_on_meta`) takes the loaded tensors as its parameters and buffers, so
    the only copy made is the one into the model's dtype (files may be float16)."""
    state = load_tensors(path, device)
    own = module.state_dict()
    if adapt is not None:
        state = adapt(state, own)
    _check_shapes(path, {k: tuple(v.shape) for k, v in own.items()}, {k: tuple(v.shape) for k, v in state.items()})
    on_meta = any(v.is_meta for v in own.values())
    # Files may be stored in half precision; the model keeps its own dtype. Popping frees each file tensor
    # as soon as it is converted.
    module.load_state_dict({k: state.pop(k).to(own[k].dtype) for k in list(state)}, assign=on_meta)
    if on_meta:
        left = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
        if left:  # a tensor the model makes itself rather than saves (a non-persistent buffer)
            raise CheckpointError(f"{path}: no values for {left[:5]} (not in the model's state dict)")


def save_model_dir(path: str | Path, cfg: ModelConfig, vae: torch.nn.Module, dit: torch.nn.Module,
                   dtype: torch.dtype | None = None) -> Path:
    """Write config.json + vae.safetensors + dit.safetensors. `dtype` (e.g. torch.float16) shrinks the files."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    def cast(sd):
        return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v) for k, v in sd.items()}

    save_tensors(path / "vae.safetensors", cast(vae.state_dict()))
    save_tensors(path / "dit.safetensors", cast(dit.state_dict()))
    # config last: a directory with a config.json is complete.
    save_json(path / "config.json", {"format_version": FORMAT_VERSION, **cfg.to_dict()})
    return path


def load_model_config(path: str | Path) -> ModelConfig:
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: model directory not found")
    d = load_json(path / "config.json")
    if not isinstance(d, dict):
        raise CheckpointError(f"{path / 'config.json'}: expected a JSON object")
    version = d.pop("format_version", None)
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path / 'config.json'}: format_version {version!r}, this Tenku reads {FORMAT_VERSION}")
    try:
        cfg = ModelConfig.from_dict(d)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path / 'config.json'}: {e}") from None
    if cfg.text_encoder != "minilm" and (path / cfg.text_encoder).is_dir():  # a text encoder kept inside the model
        cfg.text_encoder = str((path / cfg.text_encoder).resolve())  # directory (`tenku convert wan` writes one)
    return cfg


# The parts of a model directory: file stem -> how to build it from the model's config.
PARTS = {"vae": lambda cfg: VideoVAE(cfg.vae), "dit": lambda cfg: DiT(cfg.dit)}


def load_model_dir(path: str | Path, parts: tuple[str, ...] = ("vae", "dit"), cfg: ModelConfig | None = None,
                   device: str | torch.device = "cpu") -> tuple:
    """(cfg, *modules): a model directory's config.json (or `cfg`, e.g. a run's config with overrides) and its
    `parts` ("vae", "dit") built from it and loaded, in eval mode. Every part's file is checked against the
    config on the meta device before any weights are read, so a config that does not match its weights fails
    first, naming the file and the keys. The modules are built on the meta device and take the file's tensors
    (loaded onto `device`) as their own: no random init, no copy but the one into the model's dtype, and the
    caller's global RNG is not moved.

        cfg, vae, dit = load_model_dir("model/")
        cfg, vae = load_model_dir("model/", ("vae",))
    """
    path = Path(path)
    cfg = load_model_config(path) if cfg is None else cfg
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown model parts {unknown}; choose from {sorted(PARTS)}")
    modules = [build_on_meta(lambda: PARTS[part](cfg), path / f"{part}.safetensors") for part in parts]
    for part, module in zip(parts, modules):
        load_state(module, path / f"{part}.safetensors", device)
        module.eval()
    return (cfg, *modules)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block from torch.manual_seed(seed) (e.g. to build modules the same way every time), then give the
    caller's global RNG back as it was: library code takes a seed, it does not reseed the process."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def init_model_dir(path: str | Path, cfg: ModelConfig, seed: int = 0) -> Path:
    """Write a randomly initialised model directory: the same seed gives the same weights (VAE, then DiT)."""
    with seeded(seed):
        vae, dit = VideoVAE(cfg.vae), DiT(cfg.dit)
    return save_model_dir(path, cfg, vae, dit)


def state_sha256(module: torch.nn.Module) -> str:
    """sha256 over a module's state dict (names and float32 values, in name order): equal weights give equal
    hex digests on any device or dtype that holds them exactly. Names the VAE a latent cache was made with, and
    checks that DDP replicas stay identical."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()
