"""LoRA adapters for Tenku's DiT (and a Wan 2.1 transformer loaded into it), through `peft`.

Training injects low-rank adapters into the attention and feed-forward projections of a frozen DiT; only the
adapters learn. An adapter folder is peft's own layout (`adapter_config.json` + `adapter_model.safetensors`),
so peft and diffusers users can read it, plus `tenku_lora.json` naming the base model it was trained on.
For generation the adapter is merged into the weights (`scale` times its delta), so sampling costs nothing
extra. Only safetensors are read: a folder holding a pickled `adapter_model.bin` alone is refused.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn as nn

from tenku.checkpoint import CheckpointError, load_json, load_tensors, save_json, save_tensors

# The linear layers of every block that get adapters: self- and cross-attention q, k, v, o and the two FFN
# projections (Wan / diffusers LoRAs target the same ones). A regex that peft matches against full names.
TARGETS = r"blocks\.\d+\.(self_attn|cross_attn)\.(q|k|v|o)|blocks\.\d+\.ffn\.(0|2)"
WEIGHTS, CONFIG, META = "adapter_model.safetensors", "adapter_config.json", "tenku_lora.json"


def lora_config(rank: int, alpha: float | None = None, dropout: float = 0.0):
    from peft import LoraConfig

    if not isinstance(rank, int) or not 1 <= rank <= 1024:
        raise ValueError(f"LoRA rank must be an integer in 1..1024, got {rank!r}")
    # alpha = rank: the adapter's delta is B @ A unscaled, so a rank change does not change the step size.
    return LoraConfig(r=rank, lora_alpha=float(alpha or rank), lora_dropout=dropout, target_modules=TARGETS,
                      bias="none")


def add_lora(dit: nn.Module, rank: int, alpha: float | None = None, dropout: float = 0.0) -> nn.Module:
    """Inject fresh adapters (B = 0, so the output is unchanged) and freeze everything else. In place."""
    from peft import inject_adapter_in_model

    dit.requires_grad_(False)
    inject_adapter_in_model(lora_config(rank, alpha, dropout), dit)
    for name, p in dit.named_parameters():
        p.requires_grad_("lora_" in name)
    return dit


def lora_state(dit: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter weights alone, under peft's names (e.g. blocks.0.self_attn.q.lora_A.weight)."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(dit)


def merged_state(dit: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of a plain DiT equal to `dit` with its adapters folded in (dit itself is left as it is)."""
    from peft.tuners.lora import LoraLayer

    merged = copy.deepcopy(dit)
    for module in merged.modules():
        if isinstance(module, LoraLayer):
            module.merge()  # W += alpha/r * B @ A, in the copy
    return {k.replace(".base_layer.", "."): v for k, v in merged.state_dict().items() if "lora_" not in k}


def save_lora(dit: nn.Module, path: str | Path, base: str | None = None, **meta) -> Path:
    """Write an adapter folder from a DiT that `add_lora` prepared. `base`: the model it was trained on."""
    path = Path(path)
    cfg = dit.peft_config["default"]
    peft_cfg = cfg.to_dict()
    peft_cfg["target_modules"] = TARGETS  # a regex string; to_dict may turn it into a set
    save_tensors(path / WEIGHTS, lora_state(dit), metadata={"format": "pt"})
    save_json(path / CONFIG, {k: sorted(v) if isinstance(v, set) else v for k, v in peft_cfg.items()})
    save_json(path / META, {"base_model": base, "rank": cfg.r, "alpha": cfg.lora_alpha, **meta})
    return path


def read_lora(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(peft config dict, adapter tensors) of a folder, with errors that name what is missing or wrong."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: LoRA adapter folder not found")
    if not (path / WEIGHTS).is_file():
        why = " (only a pickled adapter_model.bin: Tenku reads safetensors only)" if (path / "adapter_model.bin").exists() else ""
        raise CheckpointError(f"{path}: no {WEIGHTS}{why}")
    cfg = load_json(path / CONFIG)
    if not isinstance(cfg, dict) or not isinstance(cfg.get("r"), int):
        raise CheckpointError(f"{path / CONFIG}: not a LoRA config (no integer 'r')")
    state = load_tensors(path / WEIGHTS)
    if not state or not all(".lora_A." in k or ".lora_B." in k for k in state):
        raise CheckpointError(f"{path / WEIGHTS}: not LoRA adapter weights (keys without lora_A/lora_B)")
    return cfg, state


def merge_lora(dit: nn.Module, path: str | Path, scale: float = 1.0) -> nn.Module:
    """A DiT with the adapter folded into its weights: W + scale * alpha/r * B @ A. Returns the (new) DiT."""
    from peft import get_peft_model, set_peft_model_state_dict

    if not -4.0 <= float(scale) <= 4.0:
        raise ValueError(f"lora scale must be in -4..4, got {scale}")
    cfg, state = read_lora(path)
    known = {n for n, _ in dit.named_modules()}
    missing = sorted({k.split(".lora_")[0] for k in state} - known)
    if missing:
        raise CheckpointError(f"{path}: adapter for layers this model lacks, e.g. {missing[0]} (another base model?)")
    state = {k: v * scale if ".lora_B." in k else v for k, v in state.items()}  # scales the delta exactly
    model = get_peft_model(dit, lora_config(cfg["r"], cfg.get("lora_alpha")))
    result = set_peft_model_state_dict(model, {f"base_model.model.{k}": v for k, v in state.items()})  # PeftModel names
    bad = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if bad:
        raise CheckpointError(f"{path}: adapter keys the model has no place for, e.g. {bad[0]}")
    return model.merge_and_unload()

