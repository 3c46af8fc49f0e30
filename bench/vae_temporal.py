"""VAE temporal figures: is each latent frame a local, stationary function of its own pixel frames? For
one or more model directories, one table of what the DiT sees in time (issue 15):

- std per latent frame of the normalised latent, on real clips and on still clips (frame 0 repeated);
- still-clip drift: MSE between consecutive latent frames, and of latent frame j against latent frame 1
  (a local VAE gives 0: "nothing moves" is then "copy the last latent frame");
- time shift: MSE between latent frame j + 1 of x[0:17] and latent frame j of x[4:21], j >= 1 (0 for a
  VAE whose latent frames see only their own pixel frames);
- frame-0 influence: MSE change of each latent frame when only pixel frame 0 is replaced;
- receptive field in pixel frames: from the architecture (VideoVAE.receptive_field) and measured (the
  oldest of 33 pixel frames whose change reaches the last latent frame), and the decoder's in latent frames
  (how many latent frames reach the last 4 decoded frames).

All latents are posterior means, normalised with the model's latent statistics, so MSEs are in units of
the latent's variance. Clips are Tenku World scenes rendered without a codec, the same scenes as
`tenku world make --split SPLIT --seed SEED --height 64 --width 64 --frames 17`.

    nice .venv/bin/python bench/vae_temporal.py [MODEL_DIR ...] [--count 48] [--seed 5] [--split train]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenku.checkpoint import load_model_dir  # noqa: E402
from tenku.models.vae import VideoVAE  # noqa: E402
from tenku.data.video_io import frames_to_tensor  # noqa: E402
from tenku.world.make import clip_seed  # noqa: E402
from tenku.world.render import render  # noqa: E402
from tenku.world.sample import sample_scene  # noqa: E402

DEFAULT_MODEL = str(Path(__file__).resolve().parents[1] / "tenku" / "assets" / "world-xs")
SHIFT = 4  # pixel frames per latent frame


def load_vae(model_dir: str) -> VideoVAE:
    return load_model_dir(model_dir, ("vae",))[1].float()


def world_clips(count: int, split: str, seed: int, frames: int, size: int = 64) -> torch.Tensor:
    """(count, 3, frames, size, size) in [-1, 1]: the scenes `tenku world make` draws for (split, seed)."""
    return torch.stack([frames_to_tensor(render(sample_scene(split, clip_seed(seed, i), size, size, frames)))
                        for i in range(count)])


@torch.no_grad()
def latents(vae: VideoVAE, x: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """x (N, 3, T, H, W) -> normalised posterior means (N, C, T', h, w)."""
    return torch.cat([vae.normalize(vae.encode(x[i:i + batch], chunked=False).mode())
                      for i in range(0, len(x), batch)])


def per_frame_std(z: torch.Tensor) -> list[float]:
    return [float(z[:, :, j].std()) for j in range(z.shape[2])]  # over clips, channels and positions


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).mean())


@torch.no_grad()
def measured_receptive_field(vae: VideoVAE, x: torch.Tensor) -> int:
    """Pixel frames that reach the last latent frame of x (1, 3, T, H, W): T - (oldest such frame)."""
    T = x.shape[2]
    ref = vae.encode(x, chunked=False).mode()[:, :, -1]  # (1, C, h, w)
    for t in range(T):  # oldest first
        y = x.clone()
        y[:, :, t] = -y[:, :, t]
        if not torch.equal(vae.encode(y, chunked=False).mode()[:, :, -1], ref):
            return T - t
    return 0


@torch.no_grad()
def decoder_receptive_field(vae: VideoVAE, z: torch.Tensor) -> int:
    """Latent frames that reach the last latent frame's 4 decoded pixel frames, of z (1, C, T', h, w)."""
    ref = vae.decode(z, chunked=False)[:, :, -4:]  # (1, 3, 4, H, W)
    for j in range(z.shape[2]):
        w = z.clone()
        w[:, :, j] += 1.0
        if not torch.equal(vae.decode(w, chunked=False)[:, :, -4:], ref):
            return z.shape[2] - j
    return 0


def figures(vae: VideoVAE, real: torch.Tensor, long: torch.Tensor, probe: torch.Tensor) -> dict[str, str]:
    """real (N, 3, 17, H, W), long (N, 3, 17 + SHIFT, H, W), probe (1, 3, 33, H, W) -> one cell per figure."""
    def row(values, fmt="{:.3f}"):
        return " ".join(fmt.format(v) for v in values)

    z = latents(vae, real)  # (N, C, 5, h, w)
    still = latents(vae, real[:, :, :1].expand_as(real).contiguous())  # frame 0 held for 17 frames
    swapped = real.clone()
    swapped[:, :, 0] = real.roll(1, dims=0)[:, :, 0]  # another clip's frame 0
    z_swapped = latents(vae, swapped)
    T = z.shape[2]
    a = latents(vae, long[:, :, :-SHIFT])  # x[0:17]
    b = latents(vae, long[:, :, SHIFT:])  # x[4:21]
    return {
        "std per latent frame, real clips": row(per_frame_std(z)),
        "std per latent frame, still clips": row(per_frame_std(still)),
        "still: MSE latent j vs j-1 (j=1..)": row(mse(still[:, :, j], still[:, :, j - 1]) for j in range(1, T)),
        "still: MSE latent j vs 1 (j=2..)": row(mse(still[:, :, j], still[:, :, 1]) for j in range(2, T)),
        "shift 4: MSE z[0:17][j+1] vs z[4:21][j] (j=1..)": row(mse(a[:, :, j + 1], b[:, :, j])
                                                               for j in range(1, T - 1)),
        "frame 0 replaced: MSE per latent frame (j=0..)": row(mse(z_swapped[:, :, j], z[:, :, j]) for j in range(T)),
        "receptive field, pixel frames (architecture)": str(vae.receptive_field()),
        "receptive field, pixel frames (measured, of 33)": str(measured_receptive_field(vae, probe)),
        "decoder reach, latent frames (measured, of 9)": str(decoder_receptive_field(vae, latents(vae, probe))),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=[DEFAULT_MODEL], help="model directories (default: world-xs)")
    ap.add_argument("--count", type=int, default=48, help="clips per figure")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--split", default="train")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    real = world_clips(args.count, args.split, args.seed, 17)  # (N, 3, 17, 64, 64)
    long = world_clips(args.count, args.split, args.seed, 17 + SHIFT)  # same seeds, 21 frames
    probe = world_clips(1, args.split, args.seed, 33)  # (1, 3, 33, 64, 64)
    cols = [figures(load_vae(m), real, long, probe) for m in args.models]
    print(f"VAE temporal figures: {args.count} {args.split} clips (seed {args.seed}), 64x64, 17 frames "
          f"(21 for the shift), normalised posterior means, {time.perf_counter() - t0:.0f} s\n")
    names = [Path(m).parent.name if Path(m).name == "model" else Path(m).name for m in args.models]  # RUN/model
    print("| figure | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(args.models))
    for k in cols[0]:
        print(f"| {k} | " + " | ".join(c[k] for c in cols) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
