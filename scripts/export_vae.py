"""Export a VAE training checkpoint's live (non-EMA) weights as a model directory, with latent stats measured
for those weights. For short runs, where the EMA still lags far behind the weights being trained.

    .venv/bin/python scripts/export_vae.py RUN_DIR OUT_DIR [--preset world-xs] [--clips 64]
"""

import argparse
from pathlib import Path

import torch

from tenku.checkpoint import load_tensors, save_model_dir
from tenku.config import preset
from tenku.data.clips import BucketConfig, VideoDataset, read_manifest
from tenku.models.dit import DiT
from tenku.train.vae_task import latent_stats
from tenku.models.vae import VideoVAE

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("run")
ap.add_argument("out")
ap.add_argument("--preset", default="world-xs")
ap.add_argument("--manifest", default="data/world-train/manifest.jsonl")
ap.add_argument("--clips", type=int, default=64)
args = ap.parse_args()

ckpt = sorted(p for p in Path(args.run, "checkpoints").glob("step_*") if p.suffix != ".tmp")[-1]  # complete only
cfg = preset(args.preset)
vae = VideoVAE(cfg.vae).eval()
vae.load_state_dict(load_tensors(ckpt / "model.safetensors"))
clips = read_manifest(args.manifest)[: args.clips * 2]  # spare lines for skipped clips
ds = VideoDataset(clips, BucketConfig(sizes=[(64, 64), (48, 80), (80, 48)], frames=[1, 9, 17], stride=16))
mean, std = latent_stats(vae, ds, args.clips, "cpu")  # the same measurement training stores
vae.latent_mean.copy_(mean)
vae.latent_std.copy_(std)
torch.manual_seed(0)
print(save_model_dir(args.out, cfg, vae, DiT(cfg.dit)), "from", ckpt.name, "latent std", vae.latent_std.tolist())
