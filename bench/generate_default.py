"""Time and peak memory of the README's main command, `tenku generate PROMPT`, with the shipped default model.

    .venv/bin/python bench/generate_default.py            # 5 runs, median
    .venv/bin/python bench/generate_default.py --runs 3 --model DIR

Each run is a fresh process (model and text encoder loading included, as a user sees it). Peak memory is
the child's maximum resident set size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="repeats (the median is reported)")
    ap.add_argument("--prompt", default="a red ball bounces to the right")
    ap.add_argument("--model", help="model directory (default: the shipped model)")
    args = ap.parse_args()
    tenku = Path(sys.executable).with_name("tenku")
    times, peaks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            cmd = [str(tenku), "generate", args.prompt, "-q", "-o", f"{tmp}/v{i}.mp4", "--seed", str(i)]
            if args.model:
                cmd += ["--model", args.model]
            t0 = time.perf_counter()
            pid = subprocess.Popen(cmd, stdout=subprocess.DEVNULL).pid
            _, status, usage = os.wait4(pid, 0)
            times.append(time.perf_counter() - t0)
            peaks.append(usage.ru_maxrss / 1024)  # KiB -> MiB
            if status != 0:
                sys.exit(f"run {i} failed with status {status}: {' '.join(cmd)}")
    print(f"`tenku generate \"{args.prompt}\"`{' --model ' + args.model if args.model else ''}, {args.runs} fresh processes")
    print(f"{'':<14}{'median':>9}{'min':>9}{'max':>9}")
    print(f"{'wall time s':<14}{statistics.median(times):>9.2f}{min(times):>9.2f}{max(times):>9.2f}")
    print(f"{'peak RSS MiB':<14}{statistics.median(peaks):>9.0f}{min(peaks):>9.0f}{max(peaks):>9.0f}")


if __name__ == "__main__":
    main()
