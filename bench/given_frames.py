"""Does the DiT use the frames it is given? x0-prediction error per latent frame, with no frame given, with
latent frame 0 given, and with frames 0..T'-2 given, at several noise levels, on real cached latents; beside
the "copy the previous latent frame" baseline and the latent's variance per frame (issue 15).

In Tenku World the physics is deterministic, so a model that reads its given frames predicts the next latent
frame far better than one that does not, and never worse than copying the last given frame.

    nice .venv/bin/python bench/given_frames.py --model tenku/assets/world-xs --cache runs/curve/cache-uniform-2000-f1 \
        [--dit RUN/checkpoints/step_N/ema.safetensors ...] [--count 32] [--t 0.6 0.9 1.0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenku import flow  # noqa: E402
from tenku.checkpoint import load_model_dir, load_state  # noqa: E402
from tenku.data.cache import LatentDataset, collate_latents  # noqa: E402
from tenku.models.dit import DiT  # noqa: E402


@torch.no_grad()
def errors(dit, batch: dict, t: float, given: int, seed: int = 0) -> list[float]:
    """Mean squared x0 error per latent frame, (T',), with the first `given` frames clean at t = 0."""
    x0 = batch["latent"]  # (B, C, T', h, w)
    B, T = x0.shape[0], x0.shape[2]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    tt = torch.full((B, T), t)
    tt[:, :given] = 0.0
    xt = flow.interpolate(x0, noise, tt)
    v = dit(xt, tt, batch["text"], batch["text_mask"])  # (B, C, T', h, w)
    x0_hat = xt - tt[:, None, :, None, None] * v  # x_t = (1 - t) x0 + t noise and v = noise - x0
    return (x0_hat - x0).pow(2).mean((0, 1, 3, 4)).tolist()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model directory (config, VAE the cache was made with, DiT)")
    p.add_argument("--cache", required=True, help="latent cache made with that model's VAE (`tenku cache`)")
    p.add_argument("--dit", nargs="*", default=[], help="other DiT weights to compare (e.g. a run's ema.safetensors)")
    p.add_argument("--count", type=int, default=32, help="clips (the cache's first multi-frame ones)")
    p.add_argument("--t", type=float, nargs="+", default=[0.6, 0.9, 1.0], help="noise levels")
    p.add_argument("--cfg", help="config.json of a run whose model config the --dit weights need (e.g. another patch size)")
    args = p.parse_args(argv)
    if args.cfg:  # the --dit weights need another config than the model's (its own DiT does not fit it)
        import json

        from tenku.config import ModelConfig

        cfg, models = ModelConfig.from_dict(json.loads(Path(args.cfg).read_text())["model"]), []
    else:
        cfg, dit = load_model_dir(args.model, ("dit",))
        models = [("model", dit)]
    ds = LatentDataset(args.cache)
    idx = [i for i, s in enumerate(ds.buckets) if s[1] > 1][: args.count]
    batch = collate_latents([ds[i] for i in idx])
    x0 = batch["latent"]
    T = x0.shape[2]
    print(f"{len(idx)} clips of {args.cache}, latent {tuple(x0.shape[1:])}; x0 MSE per latent frame 0..{T - 1}\n")
    print("| DiT | t | nothing given | frame 0 given | frames 0-%d given |\n|---|---|---|---|---|" % (T - 2))
    for path in args.dit:
        m = DiT(cfg.dit)
        load_state(m, path)  # names a key or shape that does not fit
        models.append((Path(path).parent.parent.parent.name or path, m.eval()))
    for name, m in models:
        for t in args.t:
            cells = [" ".join(f"{e:.3f}" for e in errors(m, batch, t, g)) for g in (0, 1, T - 1)]
            print(f"| {name} | {t} | " + " | ".join(cells) + " |")
    copy = [(x0[:, :, k] - x0[:, :, k - 1]).pow(2).mean().item() for k in range(1, T)]
    print(f"\ncopy the previous latent frame, MSE per frame 1..{T - 1}: " + " ".join(f"{c:.3f}" for c in copy))
    print("latent variance per frame: " + " ".join(f"{v:.3f}" for v in x0.var((0, 1, 3, 4)).tolist()))


if __name__ == "__main__":
    main()
