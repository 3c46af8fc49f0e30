"""A small, fast WorldBench pass during DiT training: is direction rising while the loss falls?

Every `worldbench_every` steps the in-memory EMA DiT generates `worldbench_count` clips of a world split
(`worldbench_split`, scene mix `worldbench_mix`) with `worldbench_steps` sampler steps, WorldBench scores them,
and every metric's mean goes to TensorBoard and metrics.jsonl as `wb/<metric>`, beside `train_seconds` (time
spent in training steps alone), so a long run shows its learning curve against CPU time as it runs.
With `worldbench_animate` the same clips are also generated from each scene's true first frame (`wb_first/*`):
the layout is then given, so direction there measures the motion apart from where the text put the objects.
The clips and the report are kept in RUN/worldbench/step_N/ (and step_N-first/). Rank 0 only.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch.nn as nn

from tenku.config import ModelConfig
from tenku.train.config import TrainConfig


class WorldBenchPass:
    def __init__(self, cfg: TrainConfig, mcfg: ModelConfig, vae: nn.Module, run: Path, device):
        self.cfg, self.mcfg, self.vae, self.run, self.device = cfg, mcfg, vae, run, device
        self.encoder, self.disabled = None, False

    def _pipeline(self, dit_state):
        from tenku.models.dit import DiT
        from tenku.pipeline import Pipeline
        from tenku.models.text import text_encoder_for

        if self.encoder is None:
            self.encoder = text_encoder_for(self.mcfg, self.device)
        dit = DiT(self.mcfg.dit)
        dit.load_state_dict(dit_state)
        return Pipeline(self.mcfg, copy.deepcopy(self.vae), dit, self.encoder, self.device)

    def __call__(self, step: int, dit_state: dict) -> dict[str, float]:
        if self.disabled:
            return {}
        from tenku.worldbench.cli import run_benchmark

        cfg, d = self.cfg, self.mcfg.sample
        try:
            pipe = self._pipeline(dit_state)
        except (OSError, RuntimeError, ValueError) as e:
            warnings.warn(f"WorldBench pass disabled: cannot build the pipeline ({e})", stacklevel=2)
            self.disabled = True
            return {}
        tracks = {"wb": ("none", "")} | ({"wb_first": ("first", "-first")} if cfg.worldbench_animate else {})
        out = {}
        for prefix, (given, suffix) in tracks.items():
            report = run_benchmark(pipe, self.run / "worldbench" / f"step_{step:08d}{suffix}",
                                   split=cfg.worldbench_split, count=cfg.worldbench_count, seed=0, frames=d.frames,
                                   height=d.height, width=d.width, fps=d.fps, steps=cfg.worldbench_steps, quiet=True,
                                   mix=cfg.worldbench_mix, given=given)
            out |= {f"{prefix}/{k}": float(v["mean"]) for k, v in report["summary"].items()
                    if isinstance(v, dict) and isinstance(v.get("mean"), (int, float))}
        return out
