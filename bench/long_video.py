"""Long-video benchmark: time and peak working memory of `generate_long` for 2, 10, 30 and 60 s of video.

    .venv/bin/python bench/long_video.py                     # random world-xs, 2/10/30/60 s (a few minutes)
    .venv/bin/python bench/long_video.py --quick             # 2 and 10 s, 2 steps
    .venv/bin/python bench/long_video.py --model DIR --steps 20

Each length runs in a fresh process: load the model, warm up (one window and one continuation, so allocator
pools and kernels exist before measuring), read the resident set size, then generate the video into an mp4
while a thread samples resident memory every 2 ms. "Extra MiB" is the peak minus the value before generation:
the working memory of generation itself. The sliding window streams frames to disk, so time should grow
linearly with the length and memory should stay flat. Timings depend on the architecture and sizes only,
not on the weights, so the default is a randomly initialised world-xs model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, os, sys, tempfile, threading, time, torch
from pathlib import Path
from tenku.long_video import generate_long
from tenku.pipeline import Pipeline

def rss():  # resident set size in bytes, read from /proc
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

model, seconds, steps, size, fps = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
pipe = Pipeline.from_dir(model)
args = dict(height=size, width=size, fps=fps, steps=steps)
out_dir = Path(tempfile.mkdtemp())
with torch.inference_mode():  # warm-up: the first window and one continuation
    first = pipe.generate("a red ball moves right", **args).frames.numpy()
    pipe.generate("a red ball moves right", extend=first[-5:], frames=8, **args)
windows = [0]
base, peak, done = rss(), [0], threading.Event()

def watch():  # the peak minus the start is generation's working memory
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)

threading.Thread(target=watch, daemon=True).start()
t0 = time.perf_counter()
path = generate_long(pipe, "a red ball moves right", seconds, out_dir / "long.mp4",
                     callback=lambda i, n: windows.__setitem__(0, n), seed=0, **args)
dt = time.perf_counter() - t0
done.set()
print(json.dumps({"seconds": dt, "extra_mib": (max(peak[0], rss()) - base) / 2**20, "windows": windows[0],
                  "base_mib": base / 2**20, "mp4_kib": path.stat().st_size / 1024}))
"""


def run_length(model: str, seconds: float, steps: int, size: int, fps: float) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, model, str(seconds), str(steps), str(size), str(fps)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{seconds} s run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model directory (default: a randomly initialised world-xs)")
    ap.add_argument("--steps", type=int, help="sampler steps (default 4; 2 with --quick)")
    ap.add_argument("--quick", action="store_true", help="2 and 10 s only, 2 steps")
    ap.add_argument("--size", type=int, default=64, help="frame height and width in pixels")
    ap.add_argument("--fps", type=float, default=8.0)
    args = ap.parse_args()

    import torch

    from tenku.checkpoint import load_model_config
    from tenku.pipeline import init_model

    tmp = tempfile.TemporaryDirectory()
    if args.model is None:
        model = str(init_model(Path(tmp.name) / "world-xs", "world-xs"))
        what = "randomly initialised world-xs (timings and memory do not depend on the weights)"
    else:
        model, what = args.model, args.model
    cfg = load_model_config(model)
    # 4 steps keeps the full run within ~10 minutes on 2 cores; time per step is what scales, so the
    # growth with length (the point of this bench) reads the same at any step count.
    steps = args.steps or (2 if args.quick else 4)
    lengths = (2, 10) if args.quick else (2, 10, 30, 60)
    print(f"model: {what}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.size}x{args.size}, {args.fps:g} fps, "
          f"window {cfg.sample.frames} frames, history 5, {steps} steps (model default {cfg.sample.steps}), "
          f"guidance {cfg.sample.guidance}")
    print(f"load average before the run: {os.getloadavg()[0]:.1f} (other processes slow every row alike only if steady)")
    print("each length in a fresh process; extra MiB = peak resident memory during generation minus before it")
    print(f"{'video':>7}{'frames':>8}{'windows':>9}{'time s':>9}{'s / s-video':>13}{'s / window':>12}{'extra MiB':>11}{'base MiB':>10}")
    rows = {}
    for sec in lengths:
        r = run_length(model, sec, steps, args.size, args.fps)
        rows[sec] = r
        print(f"{sec:>5} s{round(sec * args.fps):>8}{r['windows']:>9}{r['seconds']:>9.1f}{r['seconds'] / sec:>13.2f}{r['seconds'] / r['windows']:>12.2f}"
              f"{r['extra_mib']:>11.1f}{r['base_mib']:>10.0f}", flush=True)
    lo, hi = lengths[0], lengths[-1]
    t_ratio = rows[hi]["seconds"] / rows[lo]["seconds"]
    m_ratio = rows[hi]["extra_mib"] / max(rows[lo]["extra_mib"], 1e-9)
    print(f"{hi} s / {lo} s: time {t_ratio:.1f}x (length ratio {hi / lo:.0f}x; windows "
          f"{rows[hi]['windows']}/{rows[lo]['windows']}), extra memory {m_ratio:.2f}x "
          f"({rows[hi]['extra_mib'] - rows[lo]['extra_mib']:+.1f} MiB; flat = 1x)")


if __name__ == "__main__":
    main()
