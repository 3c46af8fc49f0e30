"""Time and peak memory of the README's main command, `tenku generate PROMPT`, with the shipped default model.

    .venv/bin/python bench/generate_default.py            # 5 runs, median
    .venv/bin/python bench/generate_default.py --runs 3 --model DIR

Each run is a fresh process (model and text encoder loading included, as a user sees it). Peak memory is
the child's maximum resident set size. A second set of fresh processes runs the same command through
`tenku.cli.main` with timers wrapped around the pipeline's own functions, to split the wall time into
start-up (interpreter + imports), loading (text encoder; VAE + DiT), text encoding, sampling, decoding and
writing; "other" is what no timer covers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run in a fresh interpreter: the CLI's own generate, with each stage's function wrapped in a timer.
PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
import tenku.cli, tenku.pipeline as P, tenku.data.video_io as V
spent = {"imports": time.perf_counter() - t0}
def timed(owner, name, phase):
    f = getattr(owner, name)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - t
    setattr(owner, name, wrapper)
timed(P, "load_pipeline", "loading (all)")
timed(P, "text_encoder_for", "loading text encoder")
timed(P.Pipeline, "encode_prompt", "text")
timed(P.Pipeline, "sample_latents", "sampling")
timed(P.Pipeline, "decode_latents", "decoding")
timed(V.VideoWriter, "write", "writing")
timed(V.VideoWriter, "close", "writing")
t1 = time.perf_counter()
rc = tenku.cli.main(sys.argv[1:])
spent["generate (all)"] = time.perf_counter() - t1
print(json.dumps(spent))
sys.exit(rc)
"""


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
    phases(args)


def phases(args) -> None:
    """Median seconds per stage over fresh processes; nested timers are shown as parts of their parent."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            cmd = [sys.executable, "-c", PHASES, "generate", args.prompt, "-q", "-o", f"{tmp}/p{i}.mp4", "--seed", str(i)]
            cmd += ["--model", args.model] if args.model else []
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            d = json.loads(out.strip().splitlines()[-1])
            d["wall"] = time.perf_counter() - t0
            runs.append(d)
    med = lambda k: statistics.median(r.get(k, 0.0) for r in runs)  # noqa: E731
    rows = [("start-up: interpreter", med("wall") - med("imports") - med("generate (all)")),
            ("start-up: imports", med("imports")),
            ("loading: text encoder", med("loading text encoder")),
            ("loading: VAE + DiT", med("loading (all)") - med("loading text encoder")),
            ("text encoding", med("text")), ("sampling", med("sampling")), ("decoding", med("decoding")),
            ("writing", med("writing"))]
    rows.append(("other", med("wall") - sum(v for _, v in rows)))
    print(f"\nwhere the time goes (median of {args.runs} fresh processes, timers inside the CLI's own path):")
    for name, v in rows + [("total", med("wall"))]:
        print(f"{name:<24}{v:>7.2f} s")


if __name__ == "__main__":
    main()
