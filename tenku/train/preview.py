"""Preview videos during DiT training: the in-memory EMA weights sample fixed prompts into RUN/samples/."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from tenku.config import ModelConfig


class Previews:
    """Sample `cfg.sample_prompts` (seed = the prompt's index) with given DiT weights; rank 0 calls it.

    A text encoder that cannot be loaded, or whose width differs from the DiT's, turns previews off with a
    warning: training goes on without them.
    """

    def __init__(self, cfg, mcfg: ModelConfig, vae: nn.Module, run: Path, device):
        self.cfg, self.mcfg, self.vae, self.run, self.device = cfg, mcfg, vae, run, device
        self.encoder, self.disabled = None, False

    def __call__(self, step: int, dit_state: dict[str, torch.Tensor]) -> list[Path]:
        if self.disabled:
            return []
        from tenku.models.dit import DiT
        from tenku.pipeline import Pipeline
        from tenku.models.text import text_encoder_for

        if self.encoder is None:
            try:
                self.encoder = text_encoder_for(self.mcfg, self.device)
            except (OSError, RuntimeError, ValueError) as e:
                warnings.warn(f"samples disabled: cannot load the text encoder ({e})", stacklevel=2)
                self.disabled = True
                return []
            if self.encoder.dim != self.mcfg.dit.text_dim:
                warnings.warn(f"samples disabled: text encoder width {self.encoder.dim} != DiT text_dim "
                              f"{self.mcfg.dit.text_dim}", stacklevel=2)
                self.disabled = True
                return []
        dit = DiT(self.mcfg.dit)
        dit.load_state_dict(dit_state)
        pipe = Pipeline(self.mcfg, copy.deepcopy(self.vae), dit, self.encoder, self.device)
        out = []
        for i, prompt in enumerate(self.cfg.sample_prompts):
            video = pipe.generate(prompt, seed=i)
            out.append(video.save(self.run / "samples" / f"step_{step:08d}_{i}.mp4"))
        return out
