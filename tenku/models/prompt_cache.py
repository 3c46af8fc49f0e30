"""Prompt states kept on disk, so that a fresh `tenku generate` with a prompt seen before skips the text encoder.

Loading MiniLM costs a fresh process about a second, nearly all of it importing `transformers`' model code;
running it on one prompt costs 0.01 s. A user iterating on seeds, sizes or guidance repeats the prompt, so
`tenku generate` keeps each prompt's token states (float32, (L, D)) in one small safetensors file (the server
keeps its encoder loaded and needs only the in-memory cache):

    $TENKU_CACHE/prompts/<sha256>.safetensors     (TENKU_CACHE defaults to $XDG_CACHE_HOME/tenku or ~/.cache/tenku;
                                                   TENKU_CACHE=off turns it off)

The file name hashes everything the states depend on: the encoder's files (names, sizes, modification times),
the reading (max length, convention, layers), the device type, and the prompt; the prompt is also stored in the
file and compared on reading. An unreadable or mismatched file is ignored (and rewritten), never trusted.
Writes are atomic; the folder is pruned to the newest `keep` files, so endless new prompts keep it small
(about 20 KB a prompt with MiniLM).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from safetensors import SafetensorError, safe_open

from tenku.checkpoint import save_tensors


def default_dir() -> Path | None:
    """The prompt cache folder of this user, or None when TENKU_CACHE=off."""
    root = os.environ.get("TENKU_CACHE")
    if root and root.lower() == "off":
        return None
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tenku"
    return base / "prompts"


def files_signature(*folders: Path) -> str:
    """Names, sizes and modification times of the files in `folders`: changes when any encoder file does,
    without reading the weights."""
    h = hashlib.sha256()
    for folder in folders:
        for f in sorted(p for p in folder.iterdir() if p.is_file()):
            st = f.stat()
            h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


class PromptCache:
    """get(prompt) -> (L, D) float32 or None; put(prompt, states). `reading` names everything besides the
    prompt that the states depend on (see TextEncoder.reading)."""

    def __init__(self, folder: str | Path, reading: str, dim: int, keep: int = 2000):
        self.folder, self.reading, self.dim, self.keep = Path(folder), reading, dim, keep

    def path(self, prompt: str) -> Path:
        key = hashlib.sha256(f"{self.reading}\0{prompt}".encode()).hexdigest()
        return self.folder / f"{key}.safetensors"

    def get(self, prompt: str) -> torch.Tensor | None:
        path = self.path(prompt)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), "pt") as f:
                meta, states = f.metadata() or {}, f.get_tensor("states")
        except (SafetensorError, OSError, ValueError, KeyError):
            return None  # damaged, or not one of ours: encode again
        if meta.get("prompt") != prompt or meta.get("reading") != self.reading or states.dtype != torch.float32 \
                or states.ndim != 2 or states.shape[1] != self.dim:
            return None
        return states

    def put(self, prompt: str, states: torch.Tensor) -> None:
        """Store one prompt's states; a cache that cannot be written (read-only home, full disk) is skipped."""
        try:
            save_tensors(self.path(prompt), {"states": states.float()}, {"prompt": prompt, "reading": self.reading})
            self.prune()
        except OSError:
            pass

    def prune(self) -> None:
        """Keep the newest `keep` files (checked only once the folder holds 25% more)."""
        files = list(self.folder.glob("*.safetensors"))
        if len(files) <= self.keep * 5 // 4:
            return
        files.sort(key=lambda p: p.stat().st_mtime_ns)
        for f in files[: len(files) - self.keep]:
            f.unlink(missing_ok=True)
