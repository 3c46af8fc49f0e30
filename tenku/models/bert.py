"""A BERT encoder's forward pass in plain PyTorch, reading a Hugging Face BERT folder as it is on disk.

Why not transformers: importing its model code (BertModel pulls in torch.distributed.tensor, torch._dynamo,
sympy and scipy) takes 2-3 s on our CPUs, longer than the default clip takes to sample, and the default text
encoder (all-MiniLM-L6-v2, 6 layers of 384) runs in 10 ms. So a prompt the prompt cache does not hold is
encoded here, with the folder's own `tokenizer.json` through the `tokenizers` library (0.03 s to import).
transformers stays the reference and the path for every other encoder: `TextEncoder` uses this module only
for a folder `supports` accepts, and tests/models/test_bert.py checks token ids and every hidden state
against transformers' BertModel on the same prompts.

The forward is BERT's, post-norm: embeddings (word + position + token type 0) -> LayerNorm; per layer
self-attention -> dense -> LayerNorm(x + .), then dense -> GELU (erf) -> dense -> LayerNorm(x + .).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer


def supports(path: Path, tokenizer: Path) -> bool:
    """True for a BERT folder this forward reproduces: absolute positions, erf GELU, safetensors weights and a
    fast tokenizer file. Anything else (and any BERT variant we do not check) goes through transformers."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (config.get("model_type") == "bert" and config.get("hidden_act", "gelu") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and (path / "model.safetensors").is_file() and (tokenizer / "tokenizer.json").is_file())


class BertEncoder:
    """`tokenize(prompts, max_length)` -> (ids, mask); `hidden_states(ids, mask)` -> every layer's states."""

    def __init__(self, path: Path, tokenizer: Path, device: torch.device = torch.device("cpu")):
        config = json.loads((path / "config.json").read_text())
        self.heads, self.depth = config["num_attention_heads"], config["num_hidden_layers"]
        self.eps = config.get("layer_norm_eps", 1e-12)
        self.pad_id = config.get("pad_token_id", 0)
        weights = load_file(path / "model.safetensors", device=str(device))
        # Checkpoints saved from a task model (BertForMaskedLM, ...) prefix the encoder's names with "bert.".
        self.w = {k.removeprefix("bert."): v.float() for k, v in weights.items()}
        self.tokenizer = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
        self.tokenizer.no_padding()  # padding and truncation are set per call, not by the file's defaults
        self.device = device

    def tokenize(self, prompts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (B, L) long, mask (B, L) bool): [CLS] ... [SEP], truncated to max_length, padded to the longest."""
        self.tokenizer.enable_truncation(max_length)
        encoded = [e.ids for e in self.tokenizer.encode_batch(prompts)]
        L = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), L), self.pad_id, dtype=torch.long)
        for i, e in enumerate(encoded):
            ids[i, :len(e)] = torch.tensor(e)
        mask = torch.arange(L) < torch.tensor([len(e) for e in encoded])[:, None]  # (B, L)
        return ids.to(self.device), mask.to(self.device)

    @torch.no_grad()
    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """ids, mask (B, L) -> [embeddings, layer 1, ..., layer depth], each (B, L, D): transformers'
        `hidden_states` (index 0 = the embeddings). Padded positions carry values nobody should read."""
        w, eps = self.w, self.eps
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][positions]
        x = x + w["embeddings.token_type_embeddings.weight"][0]  # (B, L, D): one segment
        x = F.layer_norm(x, x.shape[-1:], w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        states = [x]
        for i in range(self.depth):
            x = self._layer(x, mask, f"encoder.layer.{i}.")
            states.append(x)
        return states

    def _layer(self, x: torch.Tensor, mask: torch.Tensor, p: str) -> torch.Tensor:
        w, eps = self.w, self.eps
        B, L, D = x.shape

        def linear(t, name):
            return F.linear(t, w[p + name + ".weight"], w[p + name + ".bias"])

        # 1. Self-attention over the real tokens (padding masked out as keys).
        q, k, v = (linear(x, f"attention.self.{n}").view(B, L, self.heads, -1).transpose(1, 2)
                   for n in ("query", "key", "value"))  # each (B, heads, L, D / heads)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])  # (B, heads, L, D / heads)
        a = linear(a.transpose(1, 2).reshape(B, L, D), "attention.output.dense")
        x = F.layer_norm(x + a, (D,), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        # 2. Feed-forward.
        h = linear(F.gelu(linear(x, "intermediate.dense")), "output.dense")  # (B, L, D)
        return F.layer_norm(x + h, (D,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
