"""Time and peak memory of the README's main command, `tenku generate PROMPT`, with the shipped default model.

    .venv/bin/python bench/generate_default.py            # 5 runs, median
    .venv/bin/python bench/generate_default.py --runs 3 --model DIR
    git worktree add /tmp/old REV && .venv/bin/python bench/generate_default.py --against /tmp/old

Each run is a fresh process (model and text encoder loading included, as a user sees it), in two columns:
`first run`, a prompt this user never generated (an empty prompt cache per run: the text encoder is loaded),
and `prompt cached`, the same prompt again (its text states read from the prompt cache,
tenku/models/prompt_cache.py: transformers is not imported). Peak memory is the child's maximum resident set
size. A second set of fresh processes runs the same command through `tenku.cli.main` with timers wrapped
around the pipeline's own functions, to split the wall time into start-up (interpreter + imports), loading the
VAE + DiT, text (loading the encoder when the prompt is not cached, and encoding), sampling, decoding and
writing; "interpreter + exit" is what no timer covers (start, and the interpreter's shutdown).

Last, the warm `generate` of the default clip (one process, the pipeline loaded once) and its speed as a
multiple of real time (the clip's length / the time to make it). `--warm-variants` adds columns for this tree
sampling in bf16 autocast (`precision="bf16"`), through `Pipeline.compile()`, and both (what `tenku serve
--precision auto --compile` does on a CPU with native bf16); `--warm-only` prints that table alone. Each warm
column is one process, loaded and warmed up before any is timed; the timed clips then go round the columns, one
each per round, so the machine's drift (30% between back-to-back runs on our VMs) hits every column alike.

`--against DIR` times another checkout (its `tenku` package, through PYTHONPATH, with this virtualenv) in the
same run, alternating with this one, as one more column; every column's ratio to the first is printed: the
machine's speed varies from run to run, the ratio much less. On a loaded machine `--threads 1` keeps each run
from waiting on a busy core.
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

REPO = Path(__file__).resolve().parents[1]
TENKU = Path(sys.executable).with_name("tenku")

# Run in a fresh interpreter: the CLI's own generate, with each stage's function wrapped in a timer.
PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
import tenku.cli, tenku.pipeline as P, tenku.data.video_io as V, tenku.models.text as TXT
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
timed(TXT.TextEncoder, "encode_tokens", "text")  # the CLI encodes before sampling (older trees: inside it)
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


# A warm pipeline: the default clip generated again and again in one process (what the server does). After the
# warm-up it prints the clip's length, then for each seed read from stdin makes two clips and prints the seconds of
# the second (the first brings the caches back after the other columns' turns), so the parent can interleave the
# columns run by run (one process computes at a time; the others wait on stdin).
WARM = r"""
import json, sys, time
import tenku
pipe = tenku.load_pipeline(sys.argv[1] or None, precision=sys.argv[3])
if sys.argv[4] == "compile":
    pipe.compile()
prompt = sys.argv[2]
video = pipe.generate(prompt, seed=0)  # the warm-up (compiles, with compile)
print(json.dumps({"clip_seconds": len(video.frames) / video.fps}), flush=True)
for line in sys.stdin:
    pipe.generate(prompt, seed=10_000 + int(line))  # untimed: caches warm again after the other columns' turns
    t = time.perf_counter()
    pipe.generate(prompt, seed=int(line))
    print(time.perf_counter() - t, flush=True)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="repeats (the median is reported)")
    ap.add_argument("--prompt", default="a red ball bounces to the right")
    ap.add_argument("--model", help="model directory (default: the shipped model)")
    ap.add_argument("--against", metavar="DIR", help="another checkout to time in the same run (e.g. a git worktree)")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS of every run (default: torch's own choice)")
    ap.add_argument("--warm-variants", action="store_true", help="warm generate also in bf16, compiled, and both")
    ap.add_argument("--warm-only", action="store_true", help="only the warm generate table (with its variants)")
    args = ap.parse_args()
    if args.warm_only:
        return print_warm(args, warm_times(args, warm_columns(args)))
    trees = {"this": REPO} | ({"against": Path(args.against).resolve()} if args.against else {})
    env = {**os.environ} | ({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})
    with tempfile.TemporaryDirectory() as caches:
        # "first run": a new, empty prompt cache for every run (filled in by {i}); "prompt cached": one shared
        # cache, primed by a run before the timed ones.
        envs = {"first run": {**env, "PYTHONPATH": str(REPO), "TENKU_CACHE": f"{caches}/cold{{i}}"},
                "prompt cached": {**env, "PYTHONPATH": str(REPO), "TENKU_CACHE": f"{caches}/warm"}}
        if args.against:
            envs["against"] = {**env, "PYTHONPATH": str(trees["against"]), "TENKU_CACHE": f"{caches}/against{{i}}"}
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([str(TENKU)] + command(args, f"{tmp}/prime.mp4"), stdout=subprocess.DEVNULL, check=True,
                           env=envs["prompt cached"], cwd=tmp)
        walls, peaks = wall_times(args, envs)
        rows = phases(args, envs)
        warm = warm_times(args, warm_columns(args, {n: e for n, e in envs.items() if n != "prompt cached"}))
    model = f" --model {args.model}" if args.model else ""
    threads = f", OMP_NUM_THREADS={args.threads}" if args.threads else ""
    print(f"`tenku generate \"{args.prompt}\"{model}`, {args.runs} fresh processes per column{threads}; "
          + ", ".join(f"{name}: {tree}" for name, tree in trees.items()))
    table([("wall time s (median)", {n: statistics.median(v) for n, v in walls.items()}),
           ("wall time s (min)", {n: min(v) for n, v in walls.items()}),
           ("wall time s (max)", {n: max(v) for n, v in walls.items()}),
           ("peak RSS MiB (median)", {n: statistics.median(v) for n, v in peaks.items()})], fmt=".2f")
    print(f"\nwhere the time goes, s (median of {args.runs} fresh processes, timers inside the CLI's own path):")
    table(rows, fmt=".2f")
    print_warm(args, warm)


def print_warm(args, warm: dict[str, dict]) -> None:
    print(f"\nwarm generate (one process per column, the pipeline loaded once; median of {args.runs} seeds after a"
          " warm-up, the columns taking turns run by run):")
    table([("seconds per clip", {n: w["seconds"] for n, w in warm.items()}),
           ("x real time", {n: w["clip_seconds"] / w["seconds"] for n, w in warm.items()})], fmt=".2f")


def warm_columns(args, envs: dict[str, dict] | None = None) -> dict[str, tuple[dict, str, str]]:
    """name -> (environment, precision, compile or eager): the given trees in fp32 eager, then this tree's
    variants with --warm-variants (or --warm-only)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)} | ({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})
    cols = {name: (e, "fp32", "eager") for name, e in (envs or {"fp32": env}).items()}
    if args.warm_variants or args.warm_only:
        cols |= {"bf16": (env, "bf16", "eager"), "fp32 compiled": (env, "fp32", "compile"),
                 "bf16 compiled": (env, "bf16", "compile")}
    if envs is None and args.against:  # --warm-only --against: the other tree's fp32 and bf16, eager and compiled
        other = {**env, "PYTHONPATH": str(Path(args.against).resolve())}
        cols |= {"against, fp32": (other, "fp32", "eager"), "against, bf16": (other, "bf16", "eager"),
                 "against, fp32 compiled": (other, "fp32", "compile"), "against, bf16 compiled": (other, "bf16", "compile")}
    return cols


def command(args, out: str) -> list[str]:
    cmd = ["generate", args.prompt, "-q", "-o", out]
    return cmd + (["--model", str(Path(args.model).resolve())] if args.model else [])  # runs run in a temp dir


def wall_times(args, envs: dict[str, dict]) -> tuple[dict, dict]:
    """Wall seconds and peak RSS (MiB) of the `tenku` command, the trees alternating run by run."""
    walls, peaks = {n: [] for n in envs}, {n: [] for n in envs}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for name, env in envs.items():
                cmd = [str(TENKU)] + command(args, f"{tmp}/{i}.mp4") + ["--seed", str(i)]
                t0 = time.perf_counter()
                pid = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=run_env(env, i), cwd=tmp).pid
                _, status, usage = os.wait4(pid, 0)
                walls[name].append(time.perf_counter() - t0)
                peaks[name].append(usage.ru_maxrss / 1024)  # KiB -> MiB
                if status != 0:
                    sys.exit(f"run {i} ({name}) failed with status {status}: {' '.join(cmd)}")
    return walls, peaks


def phases(args, envs: dict[str, dict]) -> list[tuple[str, dict]]:
    """Median seconds per stage over fresh processes; nested timers are shown as parts of their parent."""
    runs = {n: [] for n in envs}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for name, env in envs.items():
                cmd = [sys.executable, "-c", PHASES] + command(args, f"{tmp}/p{i}.mp4") + ["--seed", str(i)]
                t0 = time.perf_counter()
                # cwd: `python -c` puts the working directory first on sys.path, ahead of PYTHONPATH
                env = run_env(env, i + args.runs)  # first-run caches not used by the wall-time runs
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, cwd=tmp).stdout
                d = json.loads(out.strip().splitlines()[-1])
                d["wall"] = time.perf_counter() - t0
                runs[name].append(d)
    rows = {}
    for name, rs in runs.items():
        med = lambda k: statistics.median(r.get(k, 0.0) for r in rs)  # noqa: E731
        r = {"start-up: interpreter + exit": med("wall") - med("imports") - med("generate (all)"),
             "start-up: imports": med("imports"),
             "loading: VAE + DiT": med("loading (all)") - med("loading text encoder"),
             "text: encoder load + encoding": med("loading text encoder") + med("text"),
             "sampling": med("sampling"),
             "decoding": med("decoding"),
             "writing": med("writing")}
        r["other"] = med("wall") - sum(r.values())
        r["total"] = med("wall")
        rows[name] = r
    return [(stage, {name: rows[name][stage] for name in rows}) for stage in rows["first run"]]


def warm_times(args, columns: dict[str, tuple[dict, str, str]]) -> dict[str, dict]:
    """Per column: median seconds of a warm `generate` (the WARM script; the API loads no prompt cache) and the
    clip's length in seconds. Every column's process is loaded and warmed up first; then the timed runs go round
    the columns, one clip each per round, so a drift in the machine's speed hits every column alike."""
    procs = {}
    try:
        for name, (env, precision, mode) in columns.items():
            cmd = [sys.executable, "-c", WARM, args.model or "", args.prompt, precision, mode]
            # cwd: `python -c` puts the working directory first on sys.path, ahead of PYTHONPATH
            procs[name] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                           cwd=tempfile.gettempdir())
        out = {name: {**json.loads(ask(p, name, None)), "times": []} for name, p in procs.items()}  # warm-ups
        for seed in range(1, args.runs + 1):
            for name, p in procs.items():
                out[name]["times"].append(float(ask(p, name, seed)))
    finally:
        for p in procs.values():
            p.kill()
    return {name: {"seconds": statistics.median(o["times"]), "clip_seconds": o["clip_seconds"]}
            for name, o in out.items()}


def ask(proc: subprocess.Popen, name: str, seed: int | None) -> str:
    """Send a WARM process a seed (None: just read its warm-up line) and return the line it answers."""
    if seed is not None:
        time.sleep(0.5)  # the last column's idle OpenMP threads stop spinning before this one computes
        proc.stdin.write(f"{seed}\n")
        proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        sys.exit(f"warm column {name} exited with status {proc.wait()}")
    return line


def run_env(env: dict, i: int) -> dict:
    """The environment of run i: a first-run column's prompt cache is a new folder every run."""
    return {**env, "TENKU_CACHE": env["TENKU_CACHE"].format(i=i)}


def table(rows: list[tuple[str, dict]], fmt: str) -> None:
    """One row per measure, a column per setting, then each later column's ratio to the first."""
    names = list(rows[0][1])
    ratios = [f"{n} / {names[0]}" for n in names[1:]]
    width = {h: max(15, len(h) + 2) for h in names + ratios}
    print(f"{'':<30}" + "".join(f"{h:>{width[h]}}" for h in names + ratios))
    for label, values in rows:
        first = values[names[0]]
        line = f"{label:<30}" + "".join(f"{values[n]:>{width[n]}{fmt}}" for n in names)
        line += "".join(f"{values[n] / first:>{width[h]}.2f}" if first > 0.005 else f"{'-':>{width[h]}}"
                        for n, h in zip(names[1:], ratios))
        print(line)


if __name__ == "__main__":
    main()
