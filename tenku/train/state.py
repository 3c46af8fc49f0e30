"""Training checkpoints: save everything needed to resume exactly, keep the last N, fall back past broken ones.

A checkpoint is a folder `RUN/checkpoints/step_00001000/`:

    {name}.safetensors          model weights by name ("model", "ema", "disc"), one process or DDP (rank 0)
    optim_{name}.safetensors    optimizer tensors (Adam moments, step counters), flattened by path
    rng_rank{r}.safetensors     rank r's torch CPU/CUDA RNG states and named torch.Generator states
    rng_rank{r}.json            rank r's python and numpy RNG states and data position
    dcp/                        FSDP only: sharded model/EMA/optimizer through torch.distributed.checkpoint
    state.json                  step, the optimizer structure (the JSON index of its tensors), extra run state

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

FORMAT = 1
_STEP_DIR = re.compile(r"^step_(\d{8})$")


# ----------------------------------------------------------------------------- nested state <-> safetensors + JSON

def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """A nested dict/list of tensors and scalars -> a JSON structure with tensors replaced by their names.

    Dict keys keep their type (an optimizer's state is keyed by int param ids), so dicts are stored as pairs.
    """
    if torch.is_tensor(obj):
        tensors[prefix] = obj
        return {"tensor": prefix}
    if isinstance(obj, dict):
        return {"dict": [[k, flatten_state(v, tensors, f"{prefix}.{k}" if prefix else str(k))] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix!r} in a checkpoint (tensors and scalars only)")


def unflatten_state(struct: Any, tensors: dict[str, torch.Tensor]) -> Any:
    (kind, v), = struct.items()
    if kind == "tensor":
        if v not in tensors:
            raise CheckpointError(f"checkpoint index names tensor {v!r} but the tensor file lacks it")
        return tensors[v]
    if kind == "dict":
        return {k: unflatten_state(x, tensors) for k, x in v}
    if kind == "list":
        return [unflatten_state(x, tensors) for x in v]
    if kind == "tuple":
        return tuple(unflatten_state(x, tensors) for x in v)
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
                    extra: dict[str, Any], ranks: DistInfo = DistInfo(), keep_last: int | None = None,
                    rank_extra: dict[str, Any] | None = None) -> Path:
    """Write checkpoint `step` (all ranks call this). `optimizers[name]` belongs to `modules[name]`.

    extra: JSON run state written once (rank 0); rank_extra: JSON state per rank (e.g. the data position).
    """
    root = Path(run_dir) / "checkpoints"
    final = root / f"step_{step:08d}"
    tmp = root / f"step_{step:08d}.tmp"
    if ranks.main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    ranks.barrier()

    # 1. Weights and optimizer state.
    optim_index = {}
    if ranks.sharded:
        dcp, sd = _dcp()
        state = {}
        for name, m in modules.items():
            state[f"model.{name}"] = sd.get_model_state_dict(m)
        for name, opt in optimizers.items():
            state[f"optim.{name}"] = sd.get_optimizer_state_dict(modules[name], opt)
        dcp.save(state, checkpoint_id=str(tmp / "dcp"))
    elif ranks.main:
        for name, m in modules.items():
            save_tensors(tmp / f"{name}.safetensors", m.state_dict())
        for name, opt in optimizers.items():
            tensors: dict[str, torch.Tensor] = {}
            optim_index[name] = flatten_state(opt.state_dict(), tensors)
            save_tensors(tmp / f"optim_{name}.safetensors", tensors)

    # 2. Per-rank RNG and data position.
    rng_tensors, rng_json = capture_rng(generators)
    save_tensors(tmp / f"rng_rank{ranks.rank}.safetensors", rng_tensors)
    save_json(tmp / f"rng_rank{ranks.rank}.json", {**rng_json, "extra": rank_extra or {}})
    ranks.barrier()

    # 3. state.json last, then the rename that makes the checkpoint visible.
    if ranks.main:
        save_json(tmp / "state.json", {"format": FORMAT, "step": step, "world_size": ranks.world_size,
                                       "sharded": ranks.sharded, "modules": sorted(modules),
                                       "optimizers": optim_index, "extra": extra})
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        if keep_last:
            for old in checkpoint_dirs(run_dir)[:-keep_last]:
                shutil.rmtree(old, ignore_errors=True)
    ranks.barrier()
    return final


# ----------------------------------------------------------------------------- load

def load_checkpoint(path: str | Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    generators: dict[str, torch.Generator], ranks: DistInfo = DistInfo()) -> dict[str, Any]:
    """Restore one checkpoint into the given objects. Returns {"step", "extra", "rank_extra"}.

    Every file is read and checked before anything is modified (except FSDP, where DCP loads in place), so a
    broken checkpoint leaves the model as it was. Raises CheckpointError naming the bad file.
    """
    path = Path(path)
    state = load_json(path / "state.json")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path / 'state.json'}: not a Tenku training checkpoint (format {FORMAT})")
    if bool(state.get("sharded")) != ranks.sharded:
        kind = "FSDP (sharded)" if state.get("sharded") else "single-process/DDP"
        raise CheckpointError(f"{path} is a {kind} checkpoint; resume it with the same --set strategy")
    missing = set(modules) - set(state["modules"])
    if missing:
        raise CheckpointError(f"{path} has no weights for {sorted(missing)}")

    # 1. Read and check everything.
    weights, optim_states = {}, {}
    if not ranks.sharded:
        for name, m in modules.items():
            weights[name] = load_tensors(path / f"{name}.safetensors")
            own = m.state_dict()
            bad = sorted(set(own) ^ set(weights[name])) or [k for k in own if own[k].shape != weights[name][k].shape]
            if bad:
                raise CheckpointError(f"{path / (name + '.safetensors')} does not match the model: {bad[:5]}")
        for name in optimizers:
            if name not in state["optimizers"]:
                raise CheckpointError(f"{path / 'state.json'} has no optimizer state for {name!r}")
            tensors = load_tensors(path / f"optim_{name}.safetensors")
            optim_states[name] = unflatten_state(state["optimizers"][name], tensors)
    rank_file = path / f"rng_rank{ranks.rank}.safetensors"
    rng_tensors, rng_json = None, None
    if rank_file.exists() or state.get("world_size") == ranks.world_size:
        rng_tensors = load_tensors(rank_file)
        rng_json = load_json(path / f"rng_rank{ranks.rank}.json")

    # 2. Apply.
    if ranks.sharded:
        dcp, sd = _dcp()
        target = {f"model.{n}": sd.get_model_state_dict(m) for n, m in modules.items()}
        target.update({f"optim.{n}": sd.get_optimizer_state_dict(modules[n], o) for n, o in optimizers.items()})
        try:
            dcp.load(target, checkpoint_id=str(path / "dcp"))
        except Exception as e:  # DCP raises several types (CheckpointException, OSError, ...)
            raise CheckpointError(f"{path / 'dcp'}: cannot read the sharded checkpoint ({e})") from None
        for n, m in modules.items():
            sd.set_model_state_dict(m, target[f"model.{n}"])
        for n, o in optimizers.items():
            sd.set_optimizer_state_dict(modules[n], o, target[f"optim.{n}"])
    else:
        for name, m in modules.items():
            m.load_state_dict(weights[name])
        for name, opt in optimizers.items():
            opt.load_state_dict(optim_states[name])
    if rng_tensors is not None:
        restore_rng(rng_tensors, rng_json, generators)
    else:
        warnings.warn(f"{path}: saved with {state.get('world_size')} processes, resumed with {ranks.world_size};"
                      " rank RNG states are not restored, so the run will not repeat exactly", stacklevel=2)
    return {"step": int(state["step"]), "extra": state.get("extra", {}),
            "rank_extra": (rng_json or {}).get("extra", {})}


def resume(run_dir: str | Path, modules, optimizers, generators, ranks: DistInfo = DistInfo()) -> dict[str, Any] | None:
    """Load the newest readable checkpoint; warn about and skip broken ones. None if there is none."""
    for path in reversed(checkpoint_dirs(run_dir)):
        try:
            out, error = {**load_checkpoint(path, modules, optimizers, generators, ranks), "path": str(path)}, None
        except CheckpointError as e:
            out, error = None, e
        if ranks.agree(error is None):  # every rank must resume from the same checkpoint
            return out
        warnings.warn(f"skipping unreadable checkpoint: {error or 'unreadable on another rank'}; "
                      "falling back to the previous one", stacklevel=2)
    return None
