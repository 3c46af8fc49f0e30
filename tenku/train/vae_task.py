"""VAETask: the causal video VAE, trained on clips (`tenku train vae`).

Loss: reconstruction (L1 + frequency terms, tenku/train/vae_loss.py) + kl_weight * KL, plus an optional hinge
patch-discriminator term after `adv_start`; random square crops (`vae_crop`) make steps cheaper. Logged:
the loss, its reconstruction and L1 parts, held-out PSNR/SSIM. Every checkpoint stores the latent mean/std
measured with the weights that get exported; the model directory pairs the VAE with an untrained DiT.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from tenku.train import distributed
from tenku.checkpoint import save_model_dir, seeded
from tenku.data.clips import collate_videos, read_manifest
from tenku.train.data import clip_dataset, data_path
from tenku.train.task import Task, init_dit, init_vae
from tenku.models.vae import VideoVAE
from tenku.train.vae_loss import PatchDiscriminator, hinge_d_loss, hinge_g_loss, kl_loss, psnr, reconstruction_loss, ssim


def random_crop(video: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C, T, size, size) at one random offset per batch (sides shorter than `size` are
    kept whole). A convolutional VAE learns from crops what it applies to whole frames, at a fraction of the
    cost per step: the usual way image VAEs are trained on large images."""
    H, W = video.shape[-2:]
    h, w = min(size, H), min(size, W)
    y = int(torch.randint(0, H - h + 1, (1,), generator=generator))
    x = int(torch.randint(0, W - w + 1, (1,), generator=generator))
    return video[..., y:y + h, x:x + w]


@torch.no_grad()
def latent_stats(vae: nn.Module, dataset, clips: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean/std of VAE latents (posterior means) over the first `clips` readable training clips."""
    total, total_sq, count = None, None, 0
    used = 0
    for i in range(len(dataset)):
        if used >= clips:
            break
        item = dataset[i]
        if item is None:
            continue
        z = vae.encode(item["video"][None].to(device), chunked=False).mode().double()  # (1, C, T', h, w)
        s, s2 = z.sum(dim=(0, 2, 3, 4)), z.pow(2).sum(dim=(0, 2, 3, 4))
        total = s if total is None else total + s
        total_sq = s2 if total_sq is None else total_sq + s2
        count += z[0, 0].numel()
        used += 1
    if not count:
        raise ValueError("no readable training clip to measure the latent statistics")
    mean = total / count
    std = (total_sq / count - mean.pow(2)).clamp(min=1e-12).sqrt()
    return mean.float().cpu(), std.float().cpu()


@torch.no_grad()
def evaluate_vae(vae: nn.Module, dataset, device, limit: int = 64) -> dict[str, float]:
    """Mean PSNR/SSIM of posterior-mean reconstructions over held-out clips."""
    was = vae.training
    vae.eval()
    p, s, n = 0.0, 0.0, 0
    for i in range(min(len(dataset), limit)):
        item = dataset[i]
        if item is None:
            continue
        x = item["video"][None].to(device)  # (1, 3, T, H, W)
        recon = vae.decode(vae.encode(x, chunked=False).mode(), chunked=False)
        p, s, n = p + float(psnr(recon, x)[0]), s + float(ssim(recon, x)[0]), n + 1
    vae.train(was)
    return {"psnr": p / max(n, 1), "ssim": s / max(n, 1), "clips": n}


class VAETask(Task):
    throughput = "frames_per_s"

    def __init__(self, cfg, mcfg, ctx, dataset=None, collate=None, val_dataset=None):
        if ctx.info.sharded:
            raise ValueError("strategy 'fsdp' shards DiT blocks; train the VAE with --set strategy=ddp")
        super().__init__(cfg, mcfg, ctx, dataset, collate, val_dataset)
        self.disc, self.adv_inputs = None, {}  # the last micro-batch's real and fake clips, for the D step
        if cfg.adv_weight > 0:
            self.disc = PatchDiscriminator().to(self.device).train()
            self.disc_net = distributed.wrap(self.disc, ctx.info, "ddp")
            self.modules["disc"] = self.disc
            self.optimizers["disc"] = self.adamw(self.disc.parameters(), cfg.disc_lr)

    def build(self):
        vae = init_vae(self.cfg, self.mcfg)
        if self.cfg.vae_train == "decoder":
            vae.encoder.requires_grad_(False)  # the latent space stays as it is; only the decoder learns
        return vae, None

    def data(self, dataset, collate, val_dataset):
        cfg, val = self.cfg, None
        if dataset is None:
            clips = read_manifest(data_path(cfg))
            if cfg.val_data:
                val = clip_dataset(cfg, read_manifest(cfg.val_data), self.mcfg.vae.spatial_compression)
            elif cfg.val_clips > 0 and len(clips) > cfg.val_clips:
                clips, held = clips[: -cfg.val_clips], clips[-cfg.val_clips:]  # the manifest's last clips are held out
                val = clip_dataset(cfg, held, self.mcfg.vae.spatial_compression)
            dataset, collate = clip_dataset(cfg, clips, self.mcfg.vae.spatial_compression), collate_videos
        self.dataset = dataset  # its first clips measure the latent statistics
        return dataset, collate, val_dataset if val_dataset is not None else val

    def loss(self, batch, step):
        cfg = self.cfg
        video = batch["video"].to(self.device, non_blocking=True)  # (B, 3, T, H, W)
        if cfg.vae_crop:
            video = random_crop(video, cfg.vae_crop, self.generators["cond"])  # (B, 3, T, c, c)
        with self.ctx.autocast:
            recon, post = self.forward(video, self.generators["noise"])
            parts = reconstruction_loss(recon.float(), video, cfg.freq_weight, cfg.fg_weight)
            loss = parts["rec"] + cfg.kl_weight * kl_loss(post.mean.float(), post.logvar.float())
            if self.disc is not None and step > cfg.adv_start:
                self.disc.requires_grad_(False)  # the generator's adversarial term must not train D
                loss = loss + cfg.adv_weight * hinge_g_loss(self.disc(recon))
                self.disc.requires_grad_(True)
                self.adv_inputs.update(real=video, fake=recon.detach())
        B, T = video.shape[0], video.shape[2]
        return loss, B, B * T, {"rec": parts["rec"].detach(), "l1": parts["l1"].detach()}

    def after_step(self, step):
        """The hinge discriminator step, on the last micro-batch's real and fake clips."""
        if not self.adv_inputs:
            return
        with self.ctx.autocast:
            real, fake = self.disc_net(torch.cat([self.adv_inputs["real"], self.adv_inputs["fake"]])).float().chunk(2)
        hinge_d_loss(real, fake).backward()
        self.optimizers["disc"].step()
        self.optimizers["disc"].zero_grad(set_to_none=True)
        self.adv_inputs.clear()

    def evaluate(self, step, final, clock):
        cfg = self.cfg
        if self.val is None or not self.ctx.info.main or not ((cfg.eval_every and step % cfg.eval_every == 0) or final):
            return []
        with self.kept_rng():
            m = evaluate_vae(self.averaged, self.val, self.device)
        return [{"val_psnr": m["psnr"], "val_ssim": m["ssim"]}]

    def before_checkpoint(self):
        """Measure the latent mean/std with the weights that get exported; store them in the model and the EMA.
        A frozen encoder keeps the statistics it came with: the normalised latents must not move at all."""
        if self.cfg.vae_train == "decoder":
            return
        with self.kept_rng():
            mean, std = latent_stats(self.averaged, self.dataset, self.cfg.stats_clips, self.device)
        for m in (self.model, self.ema):
            if m is not None:
                m.latent_mean.copy_(mean)
                m.latent_std.copy_(std)

    def write_model(self, out: Path, weights):
        with seeded(self.cfg.seed):  # building draws random weights; the run's RNG is left as it was
            dit = init_dit(self.cfg, self.mcfg)  # untrained: `tenku train dit --vae RUN/model` trains it
            vae = VideoVAE(self.mcfg.vae)
        vae.load_state_dict(weights)
        save_model_dir(out, self.mcfg, vae, dit)
