"""DiTTask: the diffusion transformer, trained on a latent cache or on clips (`tenku train dit`).

Loss: the rectified-flow objective (tenku/flow/objective.py) with a random frame-conditioning mask per sample
(tenku/train/cond_mask.py), so one model learns text-to-video, image-to-video, extension and connecting. The VAE is
frozen: it encodes raw clips (the posterior mean, as the latent cache stores) and decodes previews; it comes from `vae_from` or
`init_from`. Logged: the loss and tokens per second; previews and WorldBench passes from the EMA weights.
The model directory pairs the trained DiT with that VAE.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn as nn

from tenku import flow
from tenku.data.cache import LatentDataset, collate_latents
from tenku.checkpoint import state_sha256, load_model_config, load_state, save_model_dir
from tenku.train.cond_mask import random_cond_mask
from tenku.data.clips import collate_videos, read_manifest, spatial_stride
from tenku.models.dit import DiT
from tenku.models.lora import add_lora, merged_state, save_lora
from tenku.models.text import text_encoder_for
from tenku.train.data import clip_dataset, data_path
from tenku.train.preview import Previews
from tenku.train.task import Task, init_dit, init_vae
from tenku.train.worldbench import WorldBenchPass


class _TokenAware:
    """What flow.training_loss calls: the wrapped (DDP, compiled) forward plus the raw model's token count."""

    def __init__(self, wrapped: nn.Module, raw: nn.Module):
        self.wrapped, self.num_tokens = wrapped, raw.num_tokens

    def __call__(self, *args):
        return self.wrapped(*args)


def check_cache(settings: dict | None, mcfg, vae: nn.Module | None) -> None:
    """A latent cache must match the model: latent channels and text width; warn if its VAE differs from ours."""
    if not settings:
        return
    if settings.get("latent_channels", mcfg.vae.latent_channels) != mcfg.vae.latent_channels:
        raise ValueError(f"the latent cache has {settings['latent_channels']} latent channels, the model "
                         f"{mcfg.vae.latent_channels}: re-cache with this model's VAE or pick the matching --set model=")
    if settings.get("text_dim", mcfg.dit.text_dim) != mcfg.dit.text_dim:
        raise ValueError(f"the latent cache holds {settings['text_dim']}-d text states ({settings.get('text_encoder')}),"
                         f" the DiT expects text_dim {mcfg.dit.text_dim}")
    if list(settings.get("text_layers", [])) != list(mcfg.text_layers):
        raise ValueError(f"the latent cache holds text states of hidden layers {settings.get('text_layers') or 'last'},"
                         f" the model reads {mcfg.text_layers or 'the last'} (text_layers): re-cache with this model's config")
    if vae is not None and "vae_sha256" in settings and state_sha256(vae) != settings["vae_sha256"]:
        warnings.warn("the latent cache was encoded with a different VAE (or latent statistics) than --vae/--init:"
                      " samples and the exported model will decode latents the DiT was not trained on", stacklevel=2)


class DiTTask(Task):
    """The DiT with a frozen VAE. A fine-tuning variant (e.g. LoRA adapters) changes `build_dit` (wrap the
    model), `trainable_parameters` (only the adapters) and `write_model` (merge or save the adapters)."""

    throughput = "tokens_per_s"

    def __init__(self, cfg, mcfg, ctx, dataset=None, collate=None, val_dataset=None):
        super().__init__(cfg, mcfg, ctx, dataset, collate, val_dataset)
        self.text_encoder = None  # raw clips: captions encoded on the fly, loaded on the first such batch
        vae, run, dev = self.frozen_vae, ctx.run, self.device
        self.previews = Previews(cfg, mcfg, vae, run, dev) if cfg.sample_every > 0 else None
        self.worldbench = WorldBenchPass(cfg, mcfg, vae, run, dev) if cfg.worldbench_every > 0 else None

    def build(self):
        cfg, mcfg = self.cfg, self.mcfg
        vae = init_vae(cfg, mcfg)
        if cfg.vae_from:
            vcfg = load_model_config(cfg.vae_from).vae
            if vcfg != mcfg.vae:
                raise ValueError(f"vae_from {cfg.vae_from} has VAE config {vcfg}, the run's model has {mcfg.vae}; "
                                 "set --set model=... (or model.vae.*) to match")
            load_state(vae, Path(cfg.vae_from) / "vae.safetensors")
        elif not cfg.init_from:
            warnings.warn("DiT training without vae_from/init_from: samples and the exported model use an untrained "
                          "VAE (pass --vae MODEL_DIR, e.g. the model/ folder of a `tenku train vae` run)", stacklevel=2)
        return self.build_dit(), vae.eval().requires_grad_(False)

    def build_dit(self) -> DiT:
        """The DiT to train (after the VAE, from the same seeded RNG); with lora_rank, adapters on a frozen one."""
        dit = init_dit(self.cfg, self.mcfg)
        return add_lora(dit, self.cfg.lora_rank, self.cfg.lora_alpha or None) if self.cfg.lora_rank else dit

    def weights(self) -> dict[str, torch.Tensor]:
        """The averaged weights as a plain DiT's (adapters folded in), for previews, WorldBench and export."""
        return merged_state(self.averaged) if self.cfg.lora_rank else super().weights()

    def data(self, dataset, collate, val_dataset):
        cfg, mcfg = self.cfg, self.mcfg
        if dataset is None:
            data = data_path(cfg)
            if data.is_dir():
                dataset, collate = LatentDataset(data), collate_latents
            else:
                dataset, collate = clip_dataset(cfg, read_manifest(data), spatial_stride(mcfg)), collate_videos
        trained_vae = self.frozen_vae if cfg.vae_from or cfg.init_from else None
        check_cache(getattr(dataset, "settings", None), mcfg, trained_vae)
        return dataset, collate, val_dataset

    def latents(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x0, text, text_mask): cached latents and text states, or raw clips encoded by the frozen models."""
        if "latent" in batch:
            x0 = batch["latent"].to(self.device, non_blocking=True)  # (B, C, T', h, w) normalised latents
            return x0, batch["text"].to(self.device), batch["text_mask"].to(self.device)  # (B, L, D), (B, L)
        with torch.no_grad():
            x0 = self.frozen_vae.encode_latents(batch["video"].to(self.device), chunked=False)  # (B, C, T', h, w), as cached
            if self.text_encoder is None:
                self.text_encoder = text_encoder_for(self.mcfg, self.device)
            text, text_mask = (t.to(self.device) for t in self.text_encoder.encode(batch["caption"]))
        return x0, text, text_mask

    def loss(self, batch, step):
        x0, text, text_mask = self.latents(batch)
        B, _, T, h, w = x0.shape
        cond = random_cond_mask(B, T, self.cfg.cond_probs, self.generators["cond"]).to(self.device)  # (B, T')
        with self.ctx.autocast:
            loss = flow.training_loss(_TokenAware(self.forward, self.model), x0, text, text_mask, self.mcfg.flow,
                                      cond_mask=cond, per_frame_t=self.cfg.per_frame_t,
                                      generator=self.generators["noise"])
        return loss, B, B * self.model.num_tokens(T, h, w), {}

    def evaluate(self, step, final, clock):
        """Previews and a WorldBench pass from the averaged weights (gathered on every rank, used on rank 0)."""
        cfg, main, out = self.cfg, self.ctx.info.main, []
        if self.previews is not None and (step % cfg.sample_every == 0 or final):
            weights = self.weights()
            if main:
                with self.kept_rng():
                    self.previews(step, weights)
        if self.worldbench is not None and (step % cfg.worldbench_every == 0 or final):
            weights = self.weights()
            if main:
                with self.kept_rng():
                    out.append({"train_seconds": clock, **self.worldbench(step, weights)})
        return out

    def postfix(self, scalars):
        return {**super().postfix(scalars), "tok/s": f"{scalars['tokens_per_s']:.0f}"}

    def write_model(self, out: Path, weights):
        dit = DiT(self.mcfg.dit)
        dit.load_state_dict(weights)
        save_model_dir(out, self.mcfg, self.frozen_vae, dit)
        if self.cfg.lora_rank:  # the adapter alone too: the small thing to share (`tenku generate --lora`)
            save_lora(self.averaged, out.parent / "lora", base=self.cfg.init_from, data=str(self.cfg.data))
