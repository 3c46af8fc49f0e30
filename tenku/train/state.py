"""Training checkpoints: save everything needed to resume exactly, keep the last N, fall back past broken ones.

A checkpoint is a folder `RUN/checkpoints/step_00001000/`:

    {name}.safetensors          model weights by name ("model", "ema", "disc"), one process or DDP (rank 0)
    optim_{name}.safetensors    optimizer tensors (Adam moments, step counters) by parameter name, torch's
                                flat optimizer state dict (its non-tensor settings, e.g. lr, go in state.json)
    rng_rank{r}.safetensors     rank r's torch CPU/CUDA RNG states and named torch.Generator states
    rng_rank{r}.json            rank r's python and numpy RNG states and data position
    dcp/                        FSDP only: model/EMA/optimizer through torch.distributed.checkpoint, each
                                rank's shards as safetensors (DCP's Hugging Face storage; no pickled metadata)
    state.json                  step, the optimizers' non-tensor settings, extra run state

Nothing is pickled. Everything is written into `step_X.tmp/`, then state.json is written last, then the folder
is renamed: a `step_X` folder is complete by construction. A file that is nevertheless unreadable (truncated,
corrupted disk) raises CheckpointError naming it, and `resume` falls back to the previous checkpoint with a
warning. Multi-node runs need RUN on a filesystem every node sees (each rank writes its own RNG file).
"""

from __future__ import annotations

import random
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tenku.checkpoint import CheckpointError, load_json, load_tensors, save_json, save_tensors
from tenku.train.distributed import DistInfo

FORMAT = 2  # 1: the optimizer as a nested index of opt.state_dict() (still read)
_STEP_DIR = re.compile(r"^step_(\d{8})$")


# ----------------------------------------------------------------------------- optimizer state <-> safetensors + JSON

def _flat():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # torch's own flat form: keys are parameter names ("state.blocks.0.attn.q.weight.exp_avg",
    # "param_groups.<name>.lr"), so a checkpoint does not depend on parameter order or ids.
    return StateDictOptions(flatten_optimizer_state_dict=True)


def optimizer_state(module: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, JSON rest) of `opt`, which optimizes `module` (a DTensor shard under FSDP)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    flat = get_optimizer_state_dict(module, opt, options=_flat())  # initialises an unstepped optimizer (lr 0)
    tensors = {k: v for k, v in flat.items() if torch.is_tensor(v)}
    rest = {k: list(v) if isinstance(v, tuple) else v for k, v in flat.items() if not torch.is_tensor(v)}
    return tensors, rest


def set_optimizer_state(module: torch.nn.Module, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                        rest: dict) -> None:
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    # JSON has no tuples; the only list-valued optimizer settings are tuples (Adam's betas).
    rest = {k: tuple(v) if isinstance(v, list) else v for k, v in rest.items()}
    set_optimizer_state_dict(module, opt, {**tensors, **rest}, options=_flat())


def _legacy_optimizer_state(struct: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Format 1 (before 2026-12-02): a nested index of opt.state_dict(); read-only, so older runs resume."""
    (kind, v), = struct.items()
    if kind == "tensor":
        if v not in tensors:
            raise CheckpointError(f"checkpoint index names tensor {v!r} but the tensor file lacks it")
        return tensors[v]
    if kind == "dict":
        return {k: _legacy_optimizer_state(x, tensors) for k, x in v}
    if kind in ("list", "tuple"):
        items = [_legacy_optimizer_state(x, tensors) for x in v]
        return items if kind == "list" else tuple(items)
    return v


# ----------------------------------------------------------------------------- RNG

def capture_rng(generators: dict[str, torch.Generator]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """All RNG states of this process: (tensors for safetensors, JSON-able rest)."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda.{i}"] = s
    for name, g in generators.items():
        tensors[f"generator.{name}"] = g.get_state()
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(keys.astype(np.int64))
    version, state, gauss_next = random.getstate()
    return tensors, {"numpy": [kind, int(pos), int(has_gauss), float(gauss)],
                     "python": [version, list(state), gauss_next]}


def restore_rng(tensors: dict[str, torch.Tensor], js: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("torch_cuda.")), key=lambda k: int(k[11:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    for name, g in generators.items():
        key = f"generator.{name}"
        if key not in tensors:
            raise CheckpointError(f"checkpoint has no state for generator {name!r}")
        g.set_state(tensors[key])
    kind, pos, has_gauss, gauss = js["numpy"]
    np.random.set_state((kind, tensors["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, gauss_next = js["python"]
    random.setstate((version, tuple(state), gauss_next))


# ----------------------------------------------------------------------------- save

def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and _STEP_DIR.match(p.name)), key=lambda p: p.name)


def _dcp():
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import state_dict as sd

    return dcp, sd


def save_checkpoint(run_dir: str | Path, step: int, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], generators: dict[str, torch.Generator],
                    extra: dict[str, Any], info: DistInfo = DistInfo(), keep_last: int | None = None,
                    rank_extra: dict[str, Any] | None = None) -> Path:
    """Write checkpoint `step` (all ranks call this). `optimizers[name]` belongs to `modules[name]`.

    extra: JSON run state written once (rank 0); rank_extra: JSON state per rank (e.g. the data position).
    """
    root = Path(run_dir) / "checkpoints"
    final = root / f"step_{step:08d}"
    tmp = root / f"step_{step:08d}.tmp"
    if info.main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    info.barrier()

    # 1. Weights and optimizer state.
    optim_index = {}
    if info.sharded:
        dcp, sd = _dcp()
        state = {f"model.{n}.{k}": v for n, m in modules.items() for k, v in sd.get_model_state_dict(m).items()}
        for name, opt in optimizers.items():
            tensors, optim_index[name] = optimizer_state(modules[name], opt)
            state |= {f"optim.{name}.{k}": v for k, v in tensors.items()}
        # Each rank writes its shards as safetensors, their place in the whole in the file headers: no pickle.
        dcp.save(state, storage_writer=dcp.HuggingFaceStorageWriter(str(tmp / "dcp"), save_distributed=True))
    elif info.main:
        for name, m in modules.items():
            save_tensors(tmp / f"{name}.safetensors", m.state_dict())
        for name, opt in optimizers.items():
            tensors, optim_index[name] = optimizer_state(modules[name], opt)
            save_tensors(tmp / f"optim_{name}.safetensors", tensors)

    # 2. Per-rank RNG and data position.
    rng_tensors, rng_json = capture_rng(generators)
    save_tensors(tmp / f"rng_rank{info.rank}.safetensors", rng_tensors)
    save_json(tmp / f"rng_rank{info.rank}.json", {**rng_json, "extra": rank_extra or {}})
    info.barrier()

    # 3. state.json last, then the rename that makes the checkpoint visible.
    if info.main:
        save_json(tmp / "state.json", {"format": FORMAT, "step": step, "world_size": info.world_size,
                                       "sharded": info.sharded, "modules": sorted(modules),
                                       "optimizers": optim_index, "extra": extra})
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        if keep_last:
            for old in checkpoint_dirs(run_dir)[:-keep_last]:
                shutil.rmtree(old, ignore_errors=True)
    info.barrier()
    return final


# ----------------------------------------------------------------------------- load

def load_checkpoint(path: str | Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    generators: dict[str, torch.Generator], info: DistInfo = DistInfo()) -> dict[str, Any]:
    """Restore one checkpoint into the given objects. Returns {"step", "extra", "rank_extra"}.

    Every file is read and checked before anything is modified (except FSDP, where DCP loads in place), so a
    broken checkpoint leaves the model as it was. Raises CheckpointError naming the bad file.
    """
    path = Path(path)
    state = load_json(path / "state.json")
    if not isinstance(state, dict) or state.get("format") not in (1, FORMAT):
        raise CheckpointError(f"{path / 'state.json'}: not a Tenku training checkpoint (format {FORMAT})")
    legacy = state["format"] == 1
    if legacy and state.get("sharded"):
        raise CheckpointError(f"{path} is a sharded checkpoint of format 1, whose DCP metadata is a pickle: not read")
    if bool(state.get("sharded")) != info.sharded:
        kind = "FSDP (sharded)" if state.get("sharded") else "single-process/DDP"
        raise CheckpointError(f"{path} is a {kind} checkpoint; resume it with the same --set strategy")
    missing = set(modules) - set(state["modules"])
    if missing:
        raise CheckpointError(f"{path} has no weights for {sorted(missing)}")

    # 1. Read and check everything.
    for name in optimizers:
        if name not in state["optimizers"]:
            raise CheckpointError(f"{path / 'state.json'} has no optimizer state for {name!r}")
    weights, optim_states = ({}, {}) if info.sharded else _read_local(path, modules, optimizers, state)
    rank_file = path / f"rng_rank{info.rank}.safetensors"
    rng_tensors, rng_json = None, None
    if rank_file.exists() or state.get("world_size") == info.world_size:
        rng_tensors = load_tensors(rank_file)
        rng_json = load_json(path / f"rng_rank{info.rank}.json")

    # 2. Apply.
    if info.sharded:
        _load_sharded(path, modules, optimizers, state["optimizers"])
    else:
        for name, m in modules.items():
            m.load_state_dict(weights[name])
        for name, opt in optimizers.items():
            if legacy:
                opt.load_state_dict(optim_states[name])
            else:
                set_optimizer_state(modules[name], opt, optim_states[name], state["optimizers"][name])
    if rng_tensors is not None:
        restore_rng(rng_tensors, rng_json, generators)
    else:
        warnings.warn(f"{path}: saved with {state.get('world_size')} processes, resumed with {info.world_size};"
                      " rank RNG states are not restored, so the run will not repeat exactly", stacklevel=2)
    return {"step": int(state["step"]), "extra": state.get("extra", {}),
            "rank_extra": (rng_json or {}).get("extra", {})}


def _read_local(path: Path, modules, optimizers, state: dict) -> tuple[dict, dict]:
    """Weights and optimizer tensors of a one-process/DDP checkpoint, each checked against its owner."""
    weights, optim_states = {}, {}
    for name, m in modules.items():
        weights[name] = load_tensors(path / f"{name}.safetensors")
        own = m.state_dict()
        bad = sorted(set(own) ^ set(weights[name])) or [k for k in own if own[k].shape != weights[name][k].shape]
        if bad:
            raise CheckpointError(f"{path / (name + '.safetensors')} does not match the model: {bad[:5]}")
    for name, opt in optimizers.items():
        file = path / f"optim_{name}.safetensors"
        tensors = load_tensors(file)
        if state["format"] == 1:
            optim_states[name] = _legacy_optimizer_state(state["optimizers"][name], tensors)
            continue
        own, _ = optimizer_state(modules[name], opt)
        bad = sorted(set(own) ^ set(tensors)) or [k for k in own if own[k].shape != tensors[k].shape]
        if bad:
            raise CheckpointError(f"{file} does not match the optimizer: {bad[:5]}")
        optim_states[name] = tensors
    return weights, optim_states


def _load_sharded(path: Path, modules, optimizers, optim_json: dict) -> None:
    """FSDP: DCP reads each rank's part of every tensor straight into its shard (in place)."""
    dcp, sd = _dcp()
    target = {f"model.{n}.{k}": v for n, m in modules.items() for k, v in sd.get_model_state_dict(m).items()}
    for n, o in optimizers.items():
        target |= {f"optim.{n}.{k}": v for k, v in optimizer_state(modules[n], o)[0].items()}
    try:
        dcp.load(target, storage_reader=dcp.HuggingFaceStorageReader(str(path / "dcp")))
    except Exception as e:  # DCP raises several types (CheckpointException, OSError, ...)
        raise CheckpointError(f"{path / 'dcp'}: cannot read the sharded checkpoint ({e})") from None

    def part(prefix):
        return {k[len(prefix):]: v for k, v in target.items() if k.startswith(prefix)}

    for n, m in modules.items():
        sd.set_model_state_dict(m, part(f"model.{n}."))
    for n, o in optimizers.items():
        set_optimizer_state(modules[n], o, part(f"optim.{n}."), optim_json[n])


def resume(run_dir: str | Path, modules, optimizers, generators, info: DistInfo = DistInfo()) -> dict[str, Any] | None:
    """Load the newest readable checkpoint; warn about and skip broken ones. None if there is none."""
    for path in reversed(checkpoint_dirs(run_dir)):
        try:
            out, error = {**load_checkpoint(path, modules, optimizers, generators, info), "path": str(path)}, None
        except CheckpointError as e:
            out, error = None, e
        if info.agree(error is None):  # every rank must resume from the same checkpoint
            return out
        warnings.warn(f"skipping unreadable checkpoint: {error or 'unreadable on another rank'}; "
                      "falling back to the previous one", stacklevel=2)
    return None
