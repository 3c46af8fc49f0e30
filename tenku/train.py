"""Training: `tenku train vae|dit`. One function, `train(cfg)`, for one process or many (torchrun, DDP or FSDP2).

    tenku train dit --preset world-s-cpu --data CACHE_DIR --out runs/s1          # from a latent cache
    tenku train vae --preset world-s-cpu --data clips.jsonl --out runs/vae1      # from a clip manifest
    torchrun --nproc_per_node 8 -m tenku.cli train dit --preset world-s-gpu --data CACHE --out RUN
    ... --resume                                                                # continue from RUN's last checkpoint

The run folder holds config.json (the resolved TrainConfig and ModelConfig), checkpoints/, tensorboard/,
metrics.jsonl (one JSON line per logged step), samples/ (DiT) and, at the end, model/: a model directory that
`tenku generate --model RUN/model` loads (EMA weights). See tenku/distributed.py for multi-node and FSDP.

Exact resume: a checkpoint holds the model, EMA, optimizer, step (the LR schedule is a function of the step),
every RNG (torch, CUDA, numpy, python and the named generators below) and the sampler's position, so a
killed and resumed run repeats the losses of an uninterrupted one bit for bit on CPU (tests/test_train.py).
All training randomness comes from two generators: `noise` (t, noise, text dropout, VAE posterior samples;
on the training device) and `cond` (frame-conditioning masks, VAE crop offsets; CPU), seeded from (seed, rank).
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from . import distributed, flow
from .checkpoint import atomic_write, save_json, save_model_dir
from .run_guard import StopSignals, TrainingStopped, lock_run, read_metrics
from .compile import maybe_compile
from .train_worldbench import WorldBenchPass
from .config import ModelConfig
from .train_config import COND_MODES, TRAIN_PRESETS, TrainConfig, resolve
from .train_state import Ranks, checkpoint_dirs, resume, save_checkpoint


# ----------------------------------------------------------------------------- schedule, EMA, conditioning

def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (1-based): linear warm-up, then cosine to min_lr_ratio * lr or constant."""
    if step <= cfg.warmup_steps:
        return cfg.lr * step / max(1, cfg.warmup_steps)
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model; buffers are copied. Works on FSDP-sharded pairs alike."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def random_crop(video: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C, T, size, size) at one random offset per batch (sides shorter than `size` are
    kept whole). A convolutional VAE learns from crops what it applies to whole frames, at a fraction of the
    cost per step: the usual way image VAEs are trained on large images."""
    H, W = video.shape[-2:]
    h, w = min(size, H), min(size, W)
    y = int(torch.randint(0, H - h + 1, (1,), generator=generator))
    x = int(torch.randint(0, W - w + 1, (1,), generator=generator))
    return video[..., y:y + h, x:x + w]


def random_cond_mask(batch: int, frames: int, probs: dict[str, float], generator: torch.Generator | None = None) -> torch.Tensor:
    """Per sample, which latent frames are given clean (True): one model learns every conditioning mode.

    Modes: none (text-to-video), first (image-to-video), first_k (extend forward), last (last frames given:
    extend backward / last image), first_last (connect / interpolate), middle (a span inside the clip).
    At least one frame is always generated; a mode the clip is too short for falls back to none. (B, T') bool.
    """
    weights = torch.tensor([float(probs.get(m, 0.0)) for m in COND_MODES])
    modes = torch.multinomial(weights / weights.sum(), batch, replacement=True, generator=generator)  # (B,)
    u = torch.rand(batch, 2, generator=generator)  # (B, 2) span sizes / positions
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    for i in range(batch):
        mode = COND_MODES[int(modes[i])]
        k = 1 + int(u[i, 0] * (frames - 1)) if frames > 1 else 0  # 1 .. T'-1 frames
        if frames < 2 or mode == "none":
            continue
        if mode == "first":
            mask[i, 0] = True
        elif mode == "first_k":
            mask[i, :k] = True
        elif mode == "last":
            mask[i, frames - k:] = True
        elif mode == "first_last" and frames >= 3:
            mask[i, 0] = mask[i, -1] = True
        elif mode == "middle" and frames >= 3:
            k = min(k, frames - 2)
            start = 1 + int(u[i, 1] * (frames - 1 - k))  # the span stays strictly inside
            mask[i, start : start + k] = True
    return mask


class _TokenAware:
    """What flow.training_loss calls: the wrapped (DDP) forward plus the raw model's token count."""

    def __init__(self, wrapped: nn.Module, raw: nn.Module):
        self.wrapped, self.num_tokens = wrapped, raw.num_tokens

    def __call__(self, *args):
        return self.wrapped(*args)


# ----------------------------------------------------------------------------- data

class Batches:
    """Endless batches over epochs, tracking (epoch, batches consumed) for exact resume. None batches are skipped."""

    def __init__(self, dataset, collate: Callable, cfg: TrainConfig, info: distributed.DistInfo):
        from .buckets import BucketBatchSampler

        self.sampler = BucketBatchSampler(dataset.buckets, cfg.batch_size, seed=cfg.seed, rank=info.rank,
                                          world_size=info.world_size, drop_last=True)
        if len(self.sampler) == 0:
            counts = {}
            for b in dataset.buckets:
                if b is not None:
                    counts[b] = counts.get(b, 0) + 1
            raise ValueError(f"no full batch of {cfg.batch_size} per process x {info.world_size} processes: "
                             f"clips per bucket {counts or 'none (every clip was skipped)'}; lower batch_size or add data")
        self.generator = torch.Generator()  # DataLoader base seed: reseeded per epoch, so resume repeats it
        self.loader = torch.utils.data.DataLoader(dataset, batch_sampler=self.sampler, collate_fn=collate,
                                                  num_workers=cfg.num_workers, generator=self.generator,
                                                  pin_memory=info.device.type == "cuda",
                                                  persistent_workers=False)
        self.seed, self.consumed, self._it = cfg.seed, 0, None
        self.dataset, self._empty = dataset, 0  # batches in a row that held no readable clip

    def state_dict(self) -> dict:
        return self.sampler.state_dict(consumed=self.consumed)

    def load_state_dict(self, d: dict) -> None:
        self.sampler.load_state_dict(d)
        self.consumed = self.sampler.position

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        while True:
            if self._it is None:
                if self.consumed >= len(self.sampler):  # the epoch is done: the next one, from its start
                    self.sampler.set_epoch(self.sampler.epoch + 1)
                    self.consumed = 0
                self.generator.manual_seed(self.seed * 1_000_003 + self.sampler.epoch)
                self._it = iter(self.loader)
            batch = next(self._it, StopIteration)
            if batch is StopIteration:
                self._it = None
                self.consumed = len(self.sampler)
                continue
            self.consumed += 1
            if batch is not None:  # None: every clip in it was unreadable (logged by the dataset)
                self._empty = 0
                return batch
            self._empty += 1
            if self._empty >= len(self.sampler):  # a whole epoch and nothing readable: it never will be
                skipped = getattr(self.dataset, "skipped", [])
                examples = "; ".join(f"{p}: {r}" for p, r in skipped[:3])
                raise ValueError(f"no readable clip in a whole epoch ({len(self.sampler)} batches): every clip failed "
                                 f"to decode ({len(skipped)} skipped{', e.g. ' + examples if examples else ''})")


def build_data(cfg: TrainConfig, mcfg: ModelConfig, dataset=None, collate=None):
    """(train dataset, collate, held-out dataset or None). VAE: clips; DiT: a latent cache (or clips)."""
    if dataset is not None:
        return dataset, collate, None
    if cfg.data is None:
        raise ValueError("no training data: pass --data (a clip manifest for the VAE, a latent cache for the DiT)")
    data = Path(cfg.data)
    if not data.exists():
        raise FileNotFoundError(f"training data {data} not found")
    if cfg.task == "dit" and data.is_dir():
        from .cache import LatentDataset, collate_latents

        return LatentDataset(data), collate_latents, None
    from .data import BucketConfig, VideoDataset, collate_videos, read_manifest

    stride = mcfg.vae.spatial_compression * (mcfg.dit.patch_size[1] if cfg.task == "dit" else 1)
    buckets = BucketConfig(sizes=[tuple(s) for s in cfg.sizes], frames=[int(f) for f in cfg.frames], stride=stride,
                           fps=cfg.fps)
    clips = read_manifest(data)
    val = None
    if cfg.task == "vae":
        if cfg.val_data:
            val = VideoDataset(read_manifest(cfg.val_data), buckets)
        elif cfg.val_clips > 0 and len(clips) > cfg.val_clips:
            clips, held = clips[: -cfg.val_clips], clips[-cfg.val_clips:]  # the manifest's last clips are held out
            val = VideoDataset(held, buckets)
    return VideoDataset(clips, buckets), collate_videos, val


def check_cache(settings: dict | None, mcfg: ModelConfig, vae: nn.Module | None) -> None:
    """A latent cache must match the model: latent channels and text width; warn if its VAE differs from ours."""
    if not settings:
        return
    if settings.get("latent_channels", mcfg.vae.latent_channels) != mcfg.vae.latent_channels:
        raise ValueError(f"the latent cache has {settings['latent_channels']} latent channels, the model "
                         f"{mcfg.vae.latent_channels}: re-cache with this model's VAE or pick the matching --set model=")
    if settings.get("text_dim", mcfg.dit.text_dim) != mcfg.dit.text_dim:
        raise ValueError(f"the latent cache holds {settings['text_dim']}-d text states ({settings.get('text_encoder')}),"
                         f" the DiT expects text_dim {mcfg.dit.text_dim}")
    if vae is not None and "vae_sha256" in settings:
        from .cache import _fingerprint

        if _fingerprint(vae) != settings["vae_sha256"]:
            warnings.warn("the latent cache was encoded with a different VAE (or latent statistics) than --vae/--init:"
                          " samples and the exported model will decode latents the DiT was not trained on",
                          stacklevel=2)


# ----------------------------------------------------------------------------- models

def build_models(cfg: TrainConfig, mcfg: ModelConfig):
    """(trained model, frozen VAE or None). Initialisation depends on cfg.seed only (the same on every rank)."""
    from .checkpoint import load_state
    from .dit import DiT
    from .vae import VideoVAE

    torch.manual_seed(cfg.seed)
    vae = VideoVAE(mcfg.vae)
    if cfg.init_from:
        load_state(vae, Path(cfg.init_from) / "vae.safetensors")
    if cfg.task == "vae":
        return vae, None
    if cfg.vae_from:
        from .checkpoint import load_model_config

        vcfg = load_model_config(cfg.vae_from).vae
        if vcfg != mcfg.vae:
            raise ValueError(f"vae_from {cfg.vae_from} has VAE config {vcfg}, the run's model has {mcfg.vae}; "
                             "set --set model=... (or model.vae.*) to match")
        load_state(vae, Path(cfg.vae_from) / "vae.safetensors")
    elif not cfg.init_from:
        warnings.warn("DiT training without vae_from/init_from: samples and the exported model use an untrained "
                      "VAE (pass --vae MODEL_DIR, e.g. the model/ folder of a `tenku train vae` run)", stacklevel=2)
    dit = DiT(mcfg.dit)
    if cfg.init_from:
        load_state(dit, Path(cfg.init_from) / "dit.safetensors")
    return dit, vae.eval().requires_grad_(False)


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
    from .vae_loss import psnr, ssim

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


# ----------------------------------------------------------------------------- samples

class Sampler:
    """Sample videos at fixed prompts from the in-memory EMA DiT, written to RUN/samples/ (rank 0)."""

    def __init__(self, cfg: TrainConfig, mcfg: ModelConfig, vae: nn.Module, run: Path, device):
        self.cfg, self.mcfg, self.vae, self.run, self.device = cfg, mcfg, vae, run, device
        self.encoder, self.disabled = None, False

    def __call__(self, step: int, dit_state: dict[str, torch.Tensor]) -> list[Path]:
        if self.disabled:
            return []
        from .dit import DiT
        from .pipeline import Pipeline
        from .text import load_text_encoder

        if self.encoder is None:
            try:
                self.encoder = load_text_encoder(self.mcfg.text_encoder, self.mcfg.text_max_length, self.device)
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


# ----------------------------------------------------------------------------- logging

class Log:
    """tqdm bar + TensorBoard + metrics.jsonl, on rank 0 only."""

    def __init__(self, cfg: TrainConfig, run: Path, start: int, main: bool):
        self.main, self.file, self.writer, self.bar = main, run / "metrics.jsonl", None, None
        if not main:
            return
        # A resumed run rewrites the lines logged after its checkpoint (the killed run logged them too).
        if self.file.exists():
            keep = [json.dumps(r) + "\n" for r in read_metrics(self.file) if r["step"] <= start]  # torn lines dropped

            def write(tmp):
                with open(tmp, "w") as f:
                    f.writelines(keep)

            atomic_write(self.file, write)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run / "tensorboard"), purge_step=start + 1)
        except ImportError:
            warnings.warn("tensorboard is not installed: no TensorBoard scalars", stacklevel=2)
        if cfg.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=cfg.steps, initial=start, desc=f"train {cfg.task}", unit="step",
                            dynamic_ncols=True, file=sys.stderr)

    def __call__(self, step: int, scalars: dict[str, float], postfix: dict[str, str] | None = None) -> None:
        if not self.main:
            return
        with open(self.file, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        if self.writer is not None:
            for k, v in scalars.items():
                self.writer.add_scalar(k, v, step)
        if self.bar is not None and postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


# ----------------------------------------------------------------------------- the training function

def train(cfg: TrainConfig, resume_run: bool = False, dataset=None, collate=None, val_dataset=None) -> Path:
    """Train a VAE (cfg.task == "vae") or a DiT ("dit") into cfg.out. Returns the exported model directory.

    One code path for one process or many: under torchrun each process takes its share of every epoch's
    batches and gradients are averaged (DDP) or parameters sharded (FSDP2). `dataset`/`collate` replace the
    data named by cfg.data (tests, custom data): a Dataset with `.buckets` whose items the collate stacks.
    The run folder is locked for the run (rank 0 holds the lock); SIGINT/SIGTERM save a checkpoint and raise
    TrainingStopped.
    """
    if cfg.out is None:
        raise ValueError("no run folder: pass --out RUN_DIR")
    main = int(os.environ.get("RANK", "0")) == 0  # torchrun tears the other ranks down if rank 0 cannot lock
    with (lock_run(cfg.out) if main else nullcontext()), StopSignals() as stop:
        return _train(cfg, resume_run, dataset, collate, val_dataset, stop)


def _train(cfg: TrainConfig, resume_run: bool, dataset, collate, val_dataset, stop: StopSignals) -> Path:
    # 1. Processes, devices, precision.
    info = distributed.init(cfg.device)
    ranks = Ranks(info.rank, info.world_size, info.ddp and cfg.strategy == "fsdp",
                  barrier=lambda: distributed.barrier(info), agree=lambda ok: distributed.all_agree(info, ok))
    if ranks.sharded and cfg.task == "vae":
        raise ValueError("strategy 'fsdp' shards DiT blocks; train the VAE with --set strategy=ddp")
    if cfg.out is None:
        raise ValueError("no run folder: pass --out RUN_DIR")
    run, dev = Path(cfg.out), info.device
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and dev.type == "cuda")
    autocast = (torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 and not ranks.sharded else nullcontext())
    random.seed(cfg.seed + info.rank)
    np.random.seed(cfg.seed + info.rank)
    if checkpoint_dirs(run) and not resume_run:  # every rank checks (RUN is shared), so all stop together
        raise ValueError(f"{run} already holds checkpoints: pass --resume to continue, or choose a new --out")

    # 2. Models (identical init on every rank), EMA, optional discriminator, wrapping.
    mcfg = cfg.model_config()
    model, frozen_vae = build_models(cfg, mcfg)
    model.to(dev).train()
    if frozen_vae is not None:
        frozen_vae.to(dev)
    ema = copy.deepcopy(model).requires_grad_(False) if cfg.ema_decay > 0 else None
    disc = None
    if cfg.task == "vae" and cfg.adv_weight > 0:
        from .vae_loss import PatchDiscriminator

        disc = PatchDiscriminator().to(dev).train()
    net = distributed.wrap(model, info, cfg.strategy, bf16)
    if ema is not None and ranks.sharded:
        distributed.shard_fsdp(ema, info, bf16)  # sharded like the model, so the EMA update is shard-local
    disc_net = distributed.wrap(disc, info, "ddp") if disc is not None else None
    fwd = maybe_compile(net, cfg.compile, dev)  # the training forward; `net` keeps DDP's no_sync

    # 3. Optimizers (AdamW; the LR is set from the step every iteration, so the schedule resumes with it).
    def adamw(params, lr):
        return torch.optim.AdamW(params, lr=lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay,
                                 fused=dev.type == "cuda" and not ranks.sharded)

    optimizers = {"model": adamw([p for p in model.parameters() if p.requires_grad], cfg.lr)}
    if disc is not None:
        optimizers["disc"] = adamw(disc.parameters(), cfg.disc_lr)
    modules = {"model": model, **({"ema": ema} if ema is not None else {}), **({"disc": disc} if disc else {})}
    generators = {"noise": torch.Generator(dev).manual_seed(cfg.seed * 7919 + 1 + info.rank),
                  "cond": torch.Generator().manual_seed(cfg.seed * 7919 + 2 + info.rank)}

    # 4. Data.
    dataset, collate, val = build_data(cfg, mcfg, dataset, collate)
    check_cache(getattr(dataset, "settings", None), mcfg, frozen_vae if cfg.vae_from or cfg.init_from else None)
    val = val_dataset if val_dataset is not None else val
    batches = Batches(dataset, collate, cfg, info)

    # 5. Resume, then record the resolved config.
    start = 0
    if resume_run:
        state = resume(run, modules, optimizers, generators, ranks)
        if state is None:
            if info.main:
                warnings.warn(f"--resume: no checkpoint in {run}; starting from step 0", stacklevel=2)
        else:
            start = state["step"]
            batches.load_state_dict(state["extra"]["data"])
            if info.main:
                print(f"resumed from {state['path']} (step {start})", file=sys.stderr)
    if info.main:
        save_json(run / "config.json", {"train": cfg.to_dict(), "model": mcfg.to_dict(), "world_size": info.world_size})
    log = Log(cfg, run, start, info.main)
    sampler = Sampler(cfg, mcfg, frozen_vae, run, dev) if cfg.task == "dit" and cfg.sample_every > 0 else None
    wb_pass = (WorldBenchPass(cfg, mcfg, frozen_vae, run, dev)
               if cfg.task == "dit" and cfg.worldbench_every > 0 and frozen_vae is not None else None)
    # Seconds spent in training steps alone (no evaluation, samples or checkpoints), carried across resumes:
    # the x axis of a learning curve against CPU time.
    clock = float(state["extra"].get("train_seconds", 0.0)) if resume_run and state is not None else 0.0
    text_encoder = None  # DiT from raw clips: captions encoded on the fly

    def stats_to_vae():
        """VAE task: measure latent mean/std with the weights that get exported; store in model and EMA."""
        src = ema if ema is not None else model
        with torch.random.fork_rng(devices=[]):
            mean, std = latent_stats(src, dataset, cfg.stats_clips, dev)
        for m in (model, ema):
            if m is not None:
                m.latent_mean.copy_(mean)
                m.latent_std.copy_(std)

    # 6. One loss for each task.
    def dit_loss(batch) -> tuple[torch.Tensor, int, int, dict]:
        nonlocal text_encoder
        if "latent" in batch:
            x0 = batch["latent"].to(dev, non_blocking=True)  # (B, C, T', h, w) normalised latents
            text, text_mask = batch["text"].to(dev), batch["text_mask"].to(dev)  # (B, L, D), (B, L)
        else:  # raw clips: encode with the frozen VAE and the text encoder
            with torch.no_grad():
                post = frozen_vae.encode(batch["video"].to(dev), chunked=False)
                x0 = frozen_vae.normalize(post.sample(generators["noise"]))
                if text_encoder is None:
                    from .text import load_text_encoder

                    text_encoder = load_text_encoder(mcfg.text_encoder, mcfg.text_max_length, dev)
                text, text_mask = (t.to(dev) for t in text_encoder.encode(batch["caption"]))
        B, _, T, h, w = x0.shape
        cond = random_cond_mask(B, T, cfg.cond_probs, generators["cond"]).to(dev)  # (B, T')
        with autocast:
            loss = flow.training_loss(_TokenAware(fwd, model), x0, text, text_mask, mcfg.flow, cond_mask=cond,
                                      per_frame_t=cfg.per_frame_t, generator=generators["noise"])
        return loss, B, B * model.num_tokens(T, h, w), {}

    def vae_loss(batch, step) -> tuple[torch.Tensor, int, int, dict]:
        from .vae_loss import hinge_g_loss, kl_loss, reconstruction_loss

        video = batch["video"].to(dev, non_blocking=True)  # (B, 3, T, H, W)
        if cfg.vae_crop:
            video = random_crop(video, cfg.vae_crop, generators["cond"])  # (B, 3, T, c, c)
        with autocast:
            recon, post = fwd(video, generators["noise"])
            parts = reconstruction_loss(recon.float(), video, cfg.freq_weight, cfg.fg_weight)
            loss = parts["rec"] + cfg.kl_weight * kl_loss(post.mean.float(), post.logvar.float())
            if disc is not None and step > cfg.adv_start:
                disc.requires_grad_(False)  # the generator's adversarial term must not train D
                loss = loss + cfg.adv_weight * hinge_g_loss(disc(recon))
                disc.requires_grad_(True)
                adv_inputs.update(real=video, fake=recon.detach())
        return loss, video.shape[0], video.shape[0] * video.shape[2], {"rec": parts["rec"].detach(), "l1": parts["l1"].detach()}

    adv_inputs: dict[str, torch.Tensor] = {}  # the last micro-batch's real and fake clips, for the D step

    # 7. The loop.
    window = {"loss": torch.zeros((), device=dev), "parts": {}, "n": 0, "samples": 0, "tokens": 0,
                      "t0": time.perf_counter()}
    opt = optimizers["model"]
    last_save = time.monotonic()
    for step in range(start + 1, cfg.steps + 1):
        step_t0 = time.perf_counter()
        lr = lr_at(step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        adv_inputs.clear()
        for micro in range(cfg.grad_accum):
            batch = next(batches)
            last = micro == cfg.grad_accum - 1
            sync = nullcontext() if last or not (info.ddp and cfg.strategy == "ddp") else net.no_sync()
            with sync:
                loss, samples, tokens, parts = dit_loss(batch) if cfg.task == "dit" else vae_loss(batch, step)
                (loss / cfg.grad_accum).backward()
            window["loss"] += loss.detach() / cfg.grad_accum
            for k, v in parts.items():
                window["parts"][k] = window["parts"].get(k, 0.0) + v / cfg.grad_accum
            window["samples"] += samples
            window["tokens"] += tokens
        grad_norm = (torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip > 0 else None)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if adv_inputs:  # hinge discriminator step on the last micro-batch
            from .vae_loss import hinge_d_loss

            with autocast:
                real, fake = disc_net(torch.cat([adv_inputs["real"], adv_inputs["fake"]])).float().chunk(2)
            hinge_d_loss(real, fake).backward()
            optimizers["disc"].step()
            optimizers["disc"].zero_grad(set_to_none=True)
        if ema is not None:
            ema_update(ema, model, cfg.ema_decay)
        clock += time.perf_counter() - step_t0
        # The last step: the step count, or the budget of training time (max_train_minutes) spent.
        final = step == cfg.steps or (cfg.max_train_minutes > 0 and distributed.all_agree(
            info, clock < cfg.max_train_minutes * 60) is False)
        window["n"] += 1
        log.advance()

        # 7a. Logs (losses averaged over the window and over ranks).
        if step % cfg.log_every == 0 or final:
            loss_mean = float(distributed.mean_across(info, window["loss"] / window["n"]))
            dt = max(time.perf_counter() - window["t0"], 1e-9)
            world = info.world_size
            scalars = {"loss": loss_mean, "lr": lr, "train_seconds": clock, "samples_per_s": window["samples"] * world / dt,
                       ("tokens_per_s" if cfg.task == "dit" else "frames_per_s"): window["tokens"] * world / dt}
            for k, v in window["parts"].items():
                scalars[k] = float(distributed.mean_across(info, v / window["n"]))
            if grad_norm is not None:
                gn = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
                scalars["grad_norm"] = float(gn)
            log(step, scalars, {"loss": f"{loss_mean:.4f}", "smp/s": f"{scalars['samples_per_s']:.1f}",
                                **({"tok/s": f"{scalars['tokens_per_s']:.0f}"} if cfg.task == "dit" else {})})
            window = {"loss": torch.zeros((), device=dev), "parts": {}, "n": 0, "samples": 0, "tokens": 0,
                      "t0": time.perf_counter()}

        # 7b. Held-out PSNR/SSIM (VAE), samples (DiT), checkpoints.
        if cfg.task == "vae" and val is not None and info.main and (
                (cfg.eval_every and step % cfg.eval_every == 0) or final):
            with torch.random.fork_rng(devices=[]):
                m = evaluate_vae(ema if ema is not None else model, val, dev)
            log(step, {"val_psnr": m["psnr"], "val_ssim": m["ssim"]})
        if sampler is not None and (step % cfg.sample_every == 0 or final):
            state = distributed.full_state_dict(ema if ema is not None else model, info, ranks.sharded)
            if info.main:
                with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                    sampler(step, state)
        if wb_pass is not None and (step % cfg.worldbench_every == 0 or final):
            state = distributed.full_state_dict(ema if ema is not None else model, info, ranks.sharded)
            if info.main:
                with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                    log(step, {"train_seconds": clock, **wb_pass(step, state)})
        # Also a checkpoint every checkpoint_minutes, and when a signal asks the run to stop. Any rank's clock or
        # signal counts, so that every rank saves (and stops) at the same step.
        stopping = not ranks.agree(not stop.requested)
        late = bool(cfg.checkpoint_minutes) and time.monotonic() - last_save > 60 * cfg.checkpoint_minutes
        if step % cfg.checkpoint_every == 0 or final or stopping or not ranks.agree(not late):
            if cfg.task == "vae":
                stats_to_vae()
            saved = save_checkpoint(run, step, modules, optimizers, generators, {"data": batches.state_dict(), "lr": lr,
                            "schedule": cfg.schedule, "task": cfg.task, "train_seconds": clock}, ranks, keep_last=cfg.keep_last)
            last_save = time.monotonic()
        if final:
            break
        if stopping:
            log.close()
            raise TrainingStopped(step, saved, stop.signum or 15)
    log.close()

    # 8. Export a model directory with the EMA weights (rank 0 writes; FSDP gathers first).
    if not ranks.sharded:
        digest = distributed.check_replicas(model, info)  # DDP: every rank must hold the same weights
        if info.main:
            save_json(run / "weights_checksum.json", {"model_sha256": digest, "world_size": info.world_size})
    final = distributed.full_state_dict(ema if ema is not None else model, info, ranks.sharded)
    out = run / "model"
    if info.main:
        from .dit import DiT
        from .vae import VideoVAE

        if cfg.task == "dit":
            dit = DiT(mcfg.dit)
            dit.load_state_dict(final)
            save_model_dir(out, mcfg, frozen_vae, dit)
        else:
            vae = VideoVAE(mcfg.vae)
            vae.load_state_dict(final)
            torch.manual_seed(cfg.seed)
            dit = DiT(mcfg.dit)  # untrained: `tenku train dit --vae RUN/model` trains it
            if cfg.init_from:
                from .checkpoint import load_state

                load_state(dit, Path(cfg.init_from) / "dit.safetensors")
            save_model_dir(out, mcfg, vae, dit)
    distributed.cleanup(info)
    return out


# ----------------------------------------------------------------------------- command line

def cmd_train(args) -> int:
    cfg = resolve(args.preset, args.config, args.set, task=args.task, data=args.data, out=args.out, steps=args.steps,
                  vae_from=args.vae, init_from=args.init)
    try:
        out = train(cfg, resume_run=args.resume)
    except TrainingStopped as e:
        print(f"tenku train: {e}", file=sys.stderr)
        return 128 + e.signum  # the shell's convention for a process ended by a signal
    if int(os.environ.get("RANK", 0)) == 0:
        print(out)
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the VAE or the DiT (one process, or many under torchrun)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("task", choices=["vae", "dit"], help="what to train")
    p.add_argument("--preset", default="tiny-test", choices=sorted(TRAIN_PRESETS), help="training preset")
    p.add_argument("--config", metavar="YAML", help="YAML file of TrainConfig fields (overrides the preset)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="override one TrainConfig field (repeatable), e.g. --set lr=3e-4 --set model.dit.num_layers=4")
    p.add_argument("--data", help="VAE: clip manifest (.jsonl); DiT: latent cache folder (or a manifest)")
    p.add_argument("--out", help="run folder (checkpoints, logs, samples, model/)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last complete checkpoint")
    p.add_argument("--steps", type=int, help="total optimizer steps")
    p.add_argument("--vae", help="DiT: model directory whose VAE to use (e.g. RUN/model of `tenku train vae`)")
    p.add_argument("--init", help="model directory to fine-tune from")
    p.set_defaults(func=cmd_train)
