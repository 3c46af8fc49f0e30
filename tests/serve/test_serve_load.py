"""A reduced bench/serve_load.py: concurrent clients on a real uvicorn server; no job lost or duplicated."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from tenku.serve.app import create_app  # noqa: E402
from tenku.serve.background import serve_in_thread  # noqa: E402
from fake_pipeline import FakePipeline  # noqa: E402

spec = importlib.util.spec_from_file_location("serve_load", Path(__file__).parents[2] / "bench" / "serve_load.py")
serve_load = importlib.util.module_from_spec(spec)
spec.loader.exec_module(serve_load)


def test_concurrent_clients_every_job_finishes_once(tmp_path):
    app = create_app(FakePipeline(step_seconds=0.001), tmp_path / "data")
    with serve_in_thread(app) as base:
        r = serve_load.run_load(base, jobs=30, clients=6, form={"steps": 2, "frames": 5}, timeout=120)
        import httpx

        listed = httpx.get(f"{base}/v1/jobs", params={"limit": 1000}).json()
    assert r["errors"] == []
    assert r["submitted"] == r["unique"] == r["done"] == 30
    assert len(listed["jobs"]) == 30 and listed["counts"]["done"] == 30
    assert r["queue_p50"] <= r["queue_p95"] and r["throughput"] > 0
    assert len(list((tmp_path / "data" / "results").glob("*.mp4"))) == 30
