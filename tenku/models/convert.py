"""Map published Wan 2.1 transformer weights onto Tenku's DiT by renaming keys.

Tenku's DiT keeps the original Wan 2.1 (`WanModel`) names, so original checkpoints load directly; this
module maps the diffusers layout (`WanTransformer3DModel`) onto them. Nothing is reshaped: a rename is all
it takes, which is the point of keeping Wan's block layout.
"""

from __future__ import annotations

import re

import torch

# diffusers name -> Tenku (= original Wan 2.1) name. Note diffusers' norm2 is Wan's norm3 (the
# cross-attention norm); Wan's affine-free norm1/norm2 have no weights.
_RULES = [
    (r"^scale_shift_table$", "head.modulation"),
    (r"^proj_out\.", "head.head."),
    (r"^condition_embedder\.time_embedder\.linear_1\.", "time_embedding.0."),
    (r"^condition_embedder\.time_embedder\.linear_2\.", "time_embedding.2."),
    (r"^condition_embedder\.time_proj\.", "time_projection.1."),
    (r"^condition_embedder\.text_embedder\.linear_1\.", "text_embedding.0."),
    (r"^condition_embedder\.text_embedder\.linear_2\.", "text_embedding.2."),
    (r"^blocks\.(\d+)\.scale_shift_table$", r"blocks.\1.modulation"),
    (r"^blocks\.(\d+)\.attn1\.to_(q|k|v)\.", r"blocks.\1.self_attn.\2."),
    (r"^blocks\.(\d+)\.attn1\.to_out\.0\.", r"blocks.\1.self_attn.o."),
    (r"^blocks\.(\d+)\.attn1\.norm_(q|k)\.", r"blocks.\1.self_attn.norm_\2."),
    (r"^blocks\.(\d+)\.attn2\.to_(q|k|v)\.", r"blocks.\1.cross_attn.\2."),
    (r"^blocks\.(\d+)\.attn2\.to_out\.0\.", r"blocks.\1.cross_attn.o."),
    (r"^blocks\.(\d+)\.attn2\.norm_(q|k)\.", r"blocks.\1.cross_attn.norm_\2."),
    (r"^blocks\.(\d+)\.norm2\.", r"blocks.\1.norm3."),
    (r"^blocks\.(\d+)\.ffn\.net\.0\.proj\.", r"blocks.\1.ffn.0."),
    (r"^blocks\.(\d+)\.ffn\.net\.2\.", r"blocks.\1.ffn.2."),
    (r"^patch_embedding\.", "patch_embedding."),
]


def diffusers_wan_to_tenku(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a diffusers WanTransformer3DModel state dict to Tenku DiT keys; unknown keys raise."""
    out = {}
    for key, value in state.items():
        for pattern, repl in _RULES:
            new, n = re.subn(pattern, repl, key)
            if n:
                out[new] = value
                break
        else:
            raise KeyError(f"no Tenku name for diffusers key {key!r}")
    return out


def cmd_convert_wan(args) -> int:
    from tenku.models.wan import convert_wan  # reads and writes multi-GB weights only when asked

    print(convert_wan(args.dir, args.out))
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("convert", help="write a Tenku model directory from published weights")
    kinds = p.add_subparsers(dest="kind", required=True)
    w = kinds.add_parser("wan", help="a Wan 2.1 text-to-video folder in the diffusers layout (tenku/models/wan.py)")
    w.add_argument("dir", help="the Wan folder (model_index.json, transformer/, vae/, text_encoder/, tokenizer/, scheduler/)")
    w.add_argument("out", help="new Tenku model directory (text_encoder/ and tokenizer/ are hard-linked where possible)")
    w.set_defaults(func=cmd_convert_wan)
