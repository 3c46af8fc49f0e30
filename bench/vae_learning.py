"""VAE learning speed on Tenku World: several VAE configs each train for the same wall-clock budget on the
same in-memory clips, then report steps made and held-out PSNR / L1, side by side. On a CPU the question is
which VAE reaches a usable reconstruction soonest, not which is best after a week.

    nice .venv/bin/python bench/vae_learning.py [--seconds 120] [--configs xs8 xs4 xs4-16]

Configs run one after another in one process (same threads, same data, same seed); compare their ratios.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenku.config import VAEConfig  # noqa: E402
from tenku.models.vae import VideoVAE  # noqa: E402
from tenku.train.vae_loss import kl_loss, reconstruction_loss  # noqa: E402
from tenku.data.video_io import frames_to_tensor  # noqa: E402
from tenku.world.render import render  # noqa: E402
from tenku.world.sample import sample_scene  # noqa: E402

CONFIGS = {
    "xs8": VAEConfig(latent_channels=8, base_channels=16, channel_mult=(1, 2, 4, 4)),
    "xs8-16": VAEConfig(latent_channels=16, base_channels=16, channel_mult=(1, 2, 4, 4)),
    "xs4": VAEConfig(latent_channels=8, base_channels=16, channel_mult=(1, 2, 4), spatial_compression=4),
    "xs4-16": VAEConfig(latent_channels=16, base_channels=16, channel_mult=(1, 2, 4), spatial_compression=4),
    "xs4-c24": VAEConfig(latent_channels=8, base_channels=24, channel_mult=(1, 2, 2), spatial_compression=4),
}


def clips(n: int, frames: int, seed: int) -> torch.Tensor:
    """(n, 3, frames, 64, 64) in [-1, 1], rendered from train-split scenes."""
    return torch.stack([frames_to_tensor(render(sample_scene("train", seed + i, 64, 64, frames))) for i in range(n)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--configs", nargs="+", default=["xs8", "xs4", "xs4-16"], choices=sorted(CONFIGS))
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--frames", type=int, default=9)
    args = ap.parse_args(argv)
    train = clips(256, args.frames, 0)
    val = clips(16, args.frames, 10_000)
    rows = []
    for name in args.configs:
        torch.manual_seed(0)
        vae = VideoVAE(CONFIGS[name])
        opt = torch.optim.AdamW(vae.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
        g = torch.Generator().manual_seed(0)
        step, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
            idx = torch.randint(0, len(train), (args.batch,), generator=g)
            x = train[idx]  # (B, 3, T, 64, 64)
            recon, post = vae(x, g)
            loss = reconstruction_loss(recon, x, 0.5)["rec"] + 1e-6 * kl_loss(post.mean, post.logvar)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        vae.eval()
        with torch.no_grad():
            y = torch.cat([vae.decode(vae.encode(val[i:i + 4]).mode()).clamp(-1, 1) for i in range(0, len(val), 4)])
        mse = float((y - val).pow(2).mean()) / 4
        rows.append((name, sum(p.numel() for p in vae.parameters()) / 1e6, step,
                     -10 * math.log10(mse), float((y - val).abs().mean())))
        print(rows[-1], flush=True)
    print(f"\nVAE learning in {args.seconds:.0f} s each (batch {args.batch} x {args.frames} frames, 64x64, "
          f"lr {args.lr}, {torch.get_num_threads()} threads)\n")
    print("| config | params (M) | steps | val PSNR dB | val L1 |")
    print("|---|---|---|---|---|")
    for name, p, s, ps, l1 in rows:
        print(f"| {name} | {p:.2f} | {s} | {ps:.2f} | {l1:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
