"""Export a VAE training checkpoint's live (non-EMA) weights as a model directory, with latent stats measured
for those weights. For short runs, where the EMA still lags far behind the weights being trained.

    .venv/bin/python scripts/export_vae.py RUN_DIR OUT_DIR [--preset world-xs] [--clips 64]
"""

import argparse
from pathlib import Path

import torch

from tenku.checkpoint import load_tensors, save_model_dir
from tenku.config import preset
from tenku.data import BucketConfig, VideoDataset, read_manifest
from tenku.dit import DiT
from tenku.vae import VideoVAE

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("run")
ap.add_argument("out")
ap.add_argument("--preset", default="world-xs")
ap.add_argument("--manifest", default="data/world-train/manifest.jsonl")
ap.add_argument("--clips", type=int, default=64)
args = ap.parse_args()

ckpt = sorted(Path(args.run, "checkpoints").glob("step_*"))[-1]
cfg = preset(args.preset)
vae = VideoVAE(cfg.vae).eval()
vae.load_state_dict(load_tensors(ckpt / "model.safetensors"))
clips = read_manifest(args.manifest)[: args.clips * 2]
ds = VideoDataset(clips, BucketConfig(sizes=[(64, 64), (48, 80), (80, 48)], frames=[1, 9, 17], stride=16))
zs = []
with torch.no_grad():
    for i in range(len(ds)):
        item = ds[i]
        if item is not None and len(zs) < args.clips:
            zs.append(vae.encode(item["video"][None]).mode().flatten(2))  # (1, C, N)
z = torch.cat(zs, dim=2)  # (1, C, N)
vae.latent_mean.copy_(z.mean(dim=(0, 2)))
vae.latent_std.copy_(z.std(dim=(0, 2)).clamp(min=1e-3))
torch.manual_seed(0)
print(save_model_dir(args.out, cfg, vae, DiT(cfg.dit)), "from", ckpt.name, "latent std", vae.latent_std.tolist())
