"""`tenku serve` (its own code path, serving the stand-in pipeline) as a real process: SIGKILL it mid-job, start it again, nothing is lost."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from tenku.serve.background import free_port  # noqa: E402

FAKE_SERVER = Path(__file__).with_name("fake_pipeline.py")  # `tenku serve`'s code path, serving the stand-in


def start(data_dir, port, step_s):
    env = dict(os.environ, TENKU_FAKE_STEP_S=str(step_s))
    proc = subprocess.Popen([sys.executable, str(FAKE_SERVER), "--port", str(port), "--data-dir", str(data_dir),
                             "--log-level", "warning"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read().decode()}")
        try:
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")


def wait_for(base, job_id, states, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"{job_id} still {job['state']}")


def test_sigkill_and_restart_keeps_every_job(tmp_path):
    data, port = tmp_path / "data", free_port()
    proc, base = start(data, port, step_s=0.15)
    try:
        # One finished job, then one running and three queued when the process is killed.
        first = httpx.post(f"{base}/v1/jobs", data={"prompt": "first", "steps": 1}).json()["id"]
        done = wait_for(base, first, {"done"})
        result = httpx.get(f"{base}{done['result_url']}").content
        ids = [httpx.post(f"{base}/v1/jobs", data={"prompt": f"job {i}", "steps": 6}).json()["id"] for i in range(4)]
        running = wait_for(base, ids[0], {"running"})
        assert running["state"] == "running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

        proc, base = start(data, port, step_s=0.01)
        after = httpx.get(f"{base}/v1/jobs/{first}").json()
        assert after["state"] == "done" and httpx.get(f"{base}{after['result_url']}").content == result
        jobs = [wait_for(base, i, {"done", "failed", "cancelled"}) for i in ids]
        assert [j["state"] for j in jobs] == ["done"] * 4
        starts = [j["started_at"] for j in jobs]
        assert starts == sorted(starts)  # the interrupted job first, then the queue in order
        listed = httpx.get(f"{base}/v1/jobs").json()
        assert sorted(j["id"] for j in listed["jobs"]) == sorted([first, *ids])  # nothing lost or duplicated
        assert not list((data / "results").glob("*.partial.*"))
        assert len(list((data / "results").iterdir())) == 5
    finally:
        proc.kill()
        proc.wait(10)
