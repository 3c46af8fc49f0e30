"""WorldBench on VAE round trips: ground-truth Tenku World clips encoded and decoded by a model's VAE, then
scored like generated videos. This is the best a DiT on that VAE's latents can score, so it separates what
the VAE loses from what the DiT has not learnt. Several model directories are compared side by side.

    nice .venv/bin/python bench/vae_ceiling.py MODEL_DIR [MODEL_DIR ...] [--split id] [--mix full] [--count 32]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenku.checkpoint import load_model_dir  # noqa: E402
from tenku.data.clips import read_records  # noqa: E402
from tenku.models.vae import VideoVAE  # noqa: E402
from tenku.train.vae_loss import psnr  # noqa: E402
from tenku.data.video_io import frames_to_tensor, tensor_to_frames  # noqa: E402
from tenku.world.make import make_dataset  # noqa: E402
from tenku.world.render import render  # noqa: E402
from tenku.world.scene import Scene  # noqa: E402
from tenku.worldbench.metrics import score_clip  # noqa: E402
from tenku.worldbench.spec import spec_from_scene  # noqa: E402

SHOWN = ["color_accuracy", "shape_accuracy", "size_accuracy", "count_accuracy", "direction_accuracy",
         "left_right_confusion", "speed_accuracy", "velocity_error", "object_permanence"]


@torch.no_grad()
def round_trip(vae: VideoVAE, frames: np.ndarray) -> tuple[np.ndarray, float]:
    """(T, H, W, 3) uint8 -> the VAE's reconstruction (same shape, uint8) and its PSNR in dB."""
    x = frames_to_tensor(frames)[None]  # (1, 3, T, H, W)
    y = vae.decode(vae.encode(x).mode())  # (1, 3, T, H, W)
    return tensor_to_frames(y[0]).numpy(), float(psnr(y, x)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="model directories (config.json + vae.safetensors)")
    ap.add_argument("--split", default="id")
    ap.add_argument("--mix", default="full", help="scene mix of the split (tenku.world.sample.MIXES)")
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=17)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    vaes = []
    for m in args.models:
        vaes.append(load_model_dir(m, ("vae",))[1].float())
    rows = {"ground truth": []} | {m: [] for m in args.models}
    psnrs = {m: [] for m in args.models}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_dataset(Path(tmp), args.count, args.split, seed=args.seed, frames=(args.frames,),
                                workers=1, progress=False, mix=args.mix)
        for line in read_records(manifest):
            scene = Scene.from_dict(line["scene"], line["fps"], line["height"], line["width"])
            spec = spec_from_scene(line["scene"], line["fps"])
            frames = render(scene)  # (T, H, W, 3) uint8, no codec in the way
            rows["ground truth"].append(score_clip(frames, line["fps"], spec)[0])
            for m, vae in zip(args.models, vaes):
                rec, p = round_trip(vae, frames)
                rows[m].append(score_clip(rec, line["fps"], spec)[0])
                psnrs[m].append(p)
    names = list(rows)
    print(f"WorldBench on VAE round trips: split {args.split} ({args.mix} mix), {args.count} clips, seed {args.seed}, "
          f"{args.frames} frames, raw rendered frames (no H.264)\n")
    print("| metric | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for k in SHOWN:
        cells = []
        for n in names:
            v = [c[k] for c in rows[n] if not math.isnan(c[k])]
            cells.append(f"{np.mean(v):.3f} ({len(v)})" if v else "nan")
        print(f"| {k} | " + " | ".join(cells) + " |")
    print("| PSNR dB | - | " + " | ".join(f"{np.mean(psnrs[m]):.2f}" for m in args.models) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
