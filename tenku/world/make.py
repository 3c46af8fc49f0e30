"""Write a Tenku World data set: one mp4 per clip plus `manifest.jsonl` (docs/manifest.md), in parallel.

Clip i of a data set made with `seed` S draws its scene from clip_seed(S, i), a 52-bit integer spread by
numpy's SeedSequence, so data sets made with nearby seeds do not share clips. Its size and frame count are
chosen from the given choices by the same clip seed; the manifest is written in clip order whatever the
number of workers, so the output is byte-identical for a given (split, seed, count, choices).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np

from tenku.data.video_io import write_video  # imported here, before workers fork, so each does not re-import torch
from tenku.world.captions import caption
from tenku.world.render import render
from tenku.world.sample import MIXES, SPLITS, sample_scene

CRF = 12  # low enough that flat colours survive H.264 within a few levels
# Full-resolution colour: 4:2:0 halves the chroma of a 64x64 frame, smearing a small object's colour into its
# neighbours, which biases the centroids WorldBench reads back. Data files need not play in a browser.
PIX_FMT = "yuv444p"


def clip_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0] >> np.uint64(12))


def make_clip(out_dir: Path, split: str, seed: int, index: int, sizes, frames, fps: float,
              crf: int = CRF, mix: str = "full") -> dict:
    """Render and write clip `index`; return its manifest line."""
    s = clip_seed(seed, index)
    pick = np.random.default_rng([s, 1])  # sizes, frame counts and wording: separate from the scene's stream
    height, width = sizes[pick.integers(len(sizes))]
    n_frames = frames[pick.integers(len(frames))]
    scene = sample_scene(split, s, height=height, width=width, frames=n_frames, fps=fps, mix=mix)
    text = caption(scene, pick, split)
    video = f"videos/{index:06d}.mp4"
    write_video(out_dir / video, render(scene), fps=fps, crf=crf, pix_fmt=PIX_FMT)
    return {"video": video, "caption": text, "fps": fps, "frames": n_frames, "height": height, "width": width,
            "id": f"{split}-{seed}-{index:06d}", "split": split, "seed": s, **({"mix": mix} if mix != "full" else {}),
            "scene": scene.to_dict()}


def _job(args):
    return make_clip(*args)


def make_dataset(out_dir, count: int, split: str = "train", seed: int = 0, sizes=((64, 64),), frames=(17,),
                 fps: float = 8.0, workers: int | None = None, crf: int = CRF, progress: bool = True,
                 mix: str = "full") -> Path:
    """Write `count` clips and `out_dir/manifest.jsonl`; return the manifest's path.

    sizes: (height, width) pairs and frames: frame counts to choose from per clip; workers: processes
    (default: all cores; 1 runs in this process); mix: the scene mix (world.sample.MIXES).
    """
    from tqdm import tqdm

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    if mix not in MIXES:
        raise ValueError(f"unknown scene mix {mix!r}; choose from {sorted(MIXES)}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    sizes = [(int(h), int(w)) for h, w in sizes]
    frames = [int(f) for f in frames]
    if not sizes or min(min(s) for s in sizes) < 1 or not frames or min(frames) < 1 or fps <= 0:
        raise ValueError(f"need positive sizes, frame counts and fps, got {sizes}, {frames}, {fps}")
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    workers = max(1, workers or os.cpu_count() or 1)
    jobs = [(out_dir, split, seed, i, sizes, frames, float(fps), crf, mix) for i in range(count)]
    manifest = out_dir / "manifest.jsonl"
    tmp = manifest.with_suffix(".jsonl.tmp")
    bar = tqdm(total=count, desc=f"world {split}", unit="clip", disable=not progress)
    with open(tmp, "w") as f:
        if workers == 1:
            lines = map(_job, jobs)
        else:
            pool = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn").Pool(workers)
            lines = pool.imap(_job, jobs, chunksize=8)
        try:
            for line in lines:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
                bar.update()
        finally:
            if workers > 1:
                pool.terminate()
            bar.close()
    tmp.replace(manifest)  # a manifest exists only when every clip was written
    return manifest
