"""DiT training throughput on this machine: one process vs 2-process gloo (torchrun), through `tenku.train.loop.train`.

    .venv/bin/python bench/train_throughput.py                       # tiny and world-s, a few steps each
    .venv/bin/python bench/train_throughput.py --presets tiny,world-s,world-b --steps 12 --batch 4

Each cell runs the real training function (AdamW, EMA, clipping, frame conditioning, logging) on fixed random
latents of the preset's default sample size (text: 16 random token states) and reports the median
samples/s and tokens/s of the logged steps after `--warmup` steps (checkpoint writes are excluded: they happen
after the step is timed). Columns: one process with 1 thread, one process with --threads threads, and two processes with
--threads / 2 each (the same CPU budget); the ratios are 2-process samples/s over each 1-process column.
On a busy shared machine a multi-threaded process suffers most (its threads wait for each other at every op),
so compare within one run of this script and note the load average it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args) -> None:
    """One training run (under torchrun or alone): fixed latents, then exit."""
    import torch

    from tenku.data.cache import collate_latents
    from tenku.config import preset
    from tenku.train.loop import train
    from tenku.train.config import resolve

    torch.set_num_threads(args.threads)
    mcfg = preset(args.preset)
    s = mcfg.sample
    shape = (mcfg.vae.latent_channels, (s.frames - 1) // 4 + 1, s.height // mcfg.vae.spatial_compression,
             s.width // mcfg.vae.spatial_compression)

    class Latents(torch.utils.data.Dataset):
        def __init__(self, n):
            g = torch.Generator().manual_seed(0)
            self.lat = torch.randn(n, *shape, generator=g)
            self.txt = torch.randn(n, 16, mcfg.dit.text_dim, generator=g)
            self.buckets = [shape] * n

        def __len__(self):
            return len(self.lat)

        def __getitem__(self, i):
            return {"latent": self.lat[i], "text": self.txt[i], "caption": "", "index": i}

    cfg = resolve("tiny-test", sets=[f"model={args.preset}", f"steps={args.steps}", f"batch_size={args.batch}",
                                     "log_every=1", f"checkpoint_every={args.steps}", "keep_last=1", "ema_decay=0.999",
                                     "warmup_steps=1"], task="dit", out=args.out)
    import warnings

    warnings.simplefilter("ignore")
    train(cfg, dataset=Latents(args.batch * 4 * args.steps), collate=collate_latents)


def measure(preset: str, procs: int, threads: int, args) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        common = [str(Path(__file__).resolve()), "--worker", "--preset", preset, "--steps", str(args.steps),
                  "--batch", str(args.batch), "--threads", str(threads), "--out", str(out)]
        if procs == 1:
            cmd = [sys.executable, *common]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs), *common]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        if res.returncode:
            raise RuntimeError(f"{preset} x{procs} failed:\n{res.stderr[-2000:]}")
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        steady = [d for d in lines if d["step"] > args.warmup] or lines
        return {"samples_per_s": statistics.median(d["samples_per_s"] for d in steady),
                "tokens_per_s": statistics.median(d["tokens_per_s"] for d in steady)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="tiny,world-s", help="comma-separated model presets (tenku.config.PRESETS)")
    p.add_argument("--steps", type=int, default=8, help="optimizer steps per run")
    p.add_argument("--warmup", type=int, default=3, help="steps left out of the median")
    p.add_argument("--batch", type=int, default=2, help="batch size per process")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads in all")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preset", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    import torch

    T, half = args.threads, max(1, args.threads // 2)
    print(f"DiT training throughput, torch {torch.__version__}, {T} CPU threads in all, batch {args.batch} per process, "
          f"median of steps {args.warmup + 1}..{args.steps}, load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'preset':<9} {'tok/smp':>7} | {'1p x1t smp/s':>12} {'1p x' + str(T) + 't smp/s':>12} "
          f"{'2p x' + str(half) + 't smp/s':>12} {'2p tok/s':>9} | {'2p / 1p x1t':>11} {'2p / 1p x' + str(T) + 't':>11}")
    for name in args.presets.split(","):
        one1 = measure(name, 1, 1, args)
        oneT = measure(name, 1, T, args) if T > 1 else one1
        two = measure(name, 2, half, args)
        tok = two["tokens_per_s"] / two["samples_per_s"]
        print(f"{name:<9} {tok:>7.0f} | {one1['samples_per_s']:>12.2f} {oneT['samples_per_s']:>12.2f} "
              f"{two['samples_per_s']:>12.2f} {two['tokens_per_s']:>9.0f} | "
              f"{two['samples_per_s'] / one1['samples_per_s']:>11.2f} {two['samples_per_s'] / oneT['samples_per_s']:>11.2f}",
              flush=True)

if __name__ == "__main__":
    main()
