"""Weight averaging: one model directory whose weights are the mean of several (`tenku average`).

At a constant learning rate the weights wander around a good region, and an EMA over a few hundred steps still
carries the wander; the mean of snapshots taken thousands of steps apart (a run's `snapshot_every`) carries less
(README, "Longer, and averaged": on the default model's run it scored like the best single snapshot, not better).
Every model must share one architecture (config.json equal but for its sampling defaults, which come from the
first); each part (VAE, DiT) is averaged in float32 and written in the first model's DiT dtype.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tenku.checkpoint import CheckpointError, load_model_config, load_model_dir, load_tensors, save_model_dir


def _architecture(path: Path) -> dict:
    d = load_model_config(path).to_dict()
    d.pop("sample", None)  # sampling defaults may differ (the shipped copy sets its own); they are not weights
    return d


def average_states(paths: list[Path], part: str) -> dict[str, torch.Tensor]:
    """{key: mean over `paths` of part's tensor}, floats averaged in float32 then cast to the first's dtype;
    integer tensors (none today) must agree and are kept."""
    states = [load_tensors(p / f"{part}.safetensors") for p in paths]
    first = states[0]
    for p, s in zip(paths[1:], states[1:]):
        if s.keys() != first.keys() or any(s[k].shape != v.shape for k, v in first.items()):
            raise CheckpointError(f"{p / f'{part}.safetensors'}: other tensors or shapes than {paths[0]}'s")
    out = {}
    for k, v in first.items():
        if v.is_floating_point():
            out[k] = (sum(s[k].float() for s in states) / len(states)).to(v.dtype)
        elif all(torch.equal(s[k], v) for s in states):
            out[k] = v
        else:
            raise CheckpointError(f"{part}.safetensors: integer tensor {k} differs between models")
    return out


def average_models(paths: list[str | Path], out: str | Path) -> Path:
    """Write the model directory `out` whose weights are the mean of the models at `paths`."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("average needs at least one model directory")
    arch = _architecture(paths[0])
    for p in paths[1:]:
        if _architecture(p) != arch:
            raise CheckpointError(f"{p}: another architecture than {paths[0]} (config.json differs beyond 'sample')")
    cfg, vae, dit = load_model_dir(paths[0])
    vae_state, dit_state = average_states(paths, "vae"), average_states(paths, "dit")
    vae.load_state_dict(vae_state)
    dit.load_state_dict(dit_state)
    dtype = next(v.dtype for v in dit_state.values() if v.is_floating_point())  # the first model's, e.g. fp16
    return save_model_dir(out, cfg, vae, dit, dtype=None if dtype == torch.float32 else dtype)


def cmd_average(args) -> int:
    out = average_models(args.models, args.out)  # bad input: one line on stderr, exit 2 (cli_args.run)
    print(f"{out}: the mean of {len(args.models)} models")
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("average", help="one model whose weights are the mean of several (e.g. a run's snapshots)")
    p.add_argument("models", nargs="+", help="model directories of one architecture (a run's snapshots/step_*)")
    p.add_argument("--out", required=True, help="output model directory")
    p.set_defaults(func=cmd_average)
