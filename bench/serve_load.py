"""Load test of `tenku serve` on loopback: N jobs from C concurrent clients; every job must finish once.

    python bench/serve_load.py                        # 100 jobs, 20 clients, the fake pipeline in process
    python bench/serve_load.py --model tiny           # a random tiny model (tenku init-model --preset tiny)
    python bench/serve_load.py --model DIR --steps 4  # a model directory
    python bench/serve_load.py --url http://127.0.0.1:7860 --token T   # a server that is already running

Prints throughput and p50/p95 of queue latency (created -> started, server clock), end-to-end latency
(created -> finished) and submit latency (the POST round trip, client clock).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def percentiles(xs) -> tuple[float, float]:
    return float(np.percentile(xs, 50)), float(np.percentile(xs, 95))


def run_load(base: str, jobs: int = 100, clients: int = 20, token: str | None = None, form: dict | None = None,
             timeout: float = 600.0) -> dict:
    """Submit `jobs` jobs from `clients` threads, wait for all, check each finished exactly once."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    form = form or {}
    submitted: list[str] = []
    submit_s: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            mine = []
            for i in range(k, jobs, clients):
                t0 = time.perf_counter()
                r = c.post("/v1/jobs", data={"prompt": f"load test job {i}", "seed": i, **form})
                dt = time.perf_counter() - t0
                if r.status_code != 201:
                    errors.append(f"job {i}: HTTP {r.status_code} {r.text}")
                    continue
                mine.append(r.json()["id"])
                with lock:
                    submitted.append(mine[-1])
                    submit_s.append(dt)
            deadline = time.monotonic() + timeout
            pending = set(mine)
            while pending and time.monotonic() < deadline:
                for job_id in list(pending):
                    j = c.get(f"/v1/jobs/{job_id}").json()
                    if j["state"] == "done":
                        res = c.get(j["result_url"])
                        if res.status_code != 200 or not res.content:
                            errors.append(f"{job_id}: result HTTP {res.status_code}")
                        pending.discard(job_id)
                    elif j["state"] in ("failed", "cancelled"):
                        errors.append(f"{job_id}: {j['state']} {j['error']}")
                        pending.discard(job_id)
                time.sleep(0.2)  # a polite client; faster polling only takes CPU from the worker
            errors.extend(f"{job_id}: not finished in {timeout}s" for job_id in pending)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0

    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        final = [c.get(f"/v1/jobs/{i}").json() for i in submitted]
    done = [j for j in final if j["state"] == "done"]
    queue = [j["started_at"] - j["created_at"] for j in done]
    e2e = [j["finished_at"] - j["created_at"] for j in done]
    span = max(j["finished_at"] for j in done) - min(j["created_at"] for j in done) if done else float("nan")
    return dict(jobs=jobs, clients=clients, submitted=len(submitted), unique=len(set(submitted)), done=len(done),
                errors=errors, wall_s=wall, throughput=len(done) / span if done else 0.0,
                queue_p50=percentiles(queue)[0] if done else None, queue_p95=percentiles(queue)[1] if done else None,
                e2e_p50=percentiles(e2e)[0] if done else None, e2e_p95=percentiles(e2e)[1] if done else None,
                submit_p50=percentiles(submit_s)[0] if submit_s else None,
                submit_p95=percentiles(submit_s)[1] if submit_s else None)


def report(r: dict) -> str:
    ms = lambda s: f"{1000 * s:.0f} ms" if s is not None and s < 10 else f"{s:.1f} s"
    rows = [("jobs submitted / unique / done", f"{r['submitted']} / {r['unique']} / {r['done']} of {r['jobs']}"),
            ("clients", r["clients"]), ("wall time", f"{r['wall_s']:.1f} s"),
            ("throughput", f"{r['throughput']:.2f} jobs/s"),
            ("queue latency p50 / p95", f"{ms(r['queue_p50'])} / {ms(r['queue_p95'])}"),
            ("end-to-end latency p50 / p95", f"{ms(r['e2e_p50'])} / {ms(r['e2e_p95'])}"),
            ("submit round trip p50 / p95", f"{ms(r['submit_p50'])} / {ms(r['submit_p95'])}"),
            ("errors", len(r["errors"]))]
    return "\n".join(f"{k:<32} {v}" for k, v in rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--url", help="an already running server (default: start one in this process)")
    p.add_argument("--token")
    p.add_argument("--model", help="'fake' (default), 'tiny' (a random tiny model) or a model directory")
    p.add_argument("--fake-step-s", type=float, default=0.01, help="seconds per step of the fake pipeline")
    p.add_argument("--steps", type=int, help="sampler steps per job")
    args = p.parse_args()
    form = {"steps": args.steps} if args.steps else {}

    with tempfile.TemporaryDirectory() as tmp:
        if args.url:
            server, what = nullcontext(args.url), args.url
        else:
            from tenku.serve import create_app
            from tenku.serve.background import serve_in_thread

            if args.model in (None, "fake"):
                sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serve"))
                from fake_pipeline import FakePipeline  # the tests' stand-in: no model, deterministic

                pipe, what = FakePipeline(step_seconds=args.fake_step_s), f"fake pipeline, {args.fake_step_s}s/step"
            else:
                from tenku.pipeline import init_model, load_pipeline

                path = init_model(Path(tmp) / "tiny", "tiny") if args.model == "tiny" else args.model
                pipe, what = load_pipeline(path), f"model {args.model}"
            server = serve_in_thread(create_app(pipe, Path(tmp) / "data", token=args.token))
        with server as base:
            result = run_load(base, args.jobs, args.clients, args.token, form)
    print(f"tenku serve load test ({what}; {args.jobs} jobs, {args.clients} clients, loopback)")
    print(report(result))
    for e in result["errors"][:10]:
        print("error:", e)
    ok = not result["errors"] and result["done"] == result["unique"] == args.jobs
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
