"""HTTP API of `tenku serve` in process (FastAPI TestClient) with the fast stand-in pipeline."""

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from tenku.serve.app import create_app  # noqa: E402
from tenku.serve.limits import Limits  # noqa: E402
from fake_pipeline import FakePipeline  # noqa: E402
from tenku.serve.jobs import JobStore  # noqa: E402
from tenku.data.video_io import read_video, write_image, write_video  # noqa: E402


def media(tmp_path, name, frames=1, size=(32, 32)):
    """Bytes of a small PNG (frames=1) or mp4."""
    rng = np.random.default_rng(len(name))
    x = rng.integers(0, 255, (frames, *size, 3), dtype=np.uint8)
    path = tmp_path / name
    write_image(path, x[0]) if path.suffix == ".png" else write_video(path, x, 8)
    return path.read_bytes()


def wait(client, job_id, states=("done", "failed", "cancelled"), timeout=20.0, headers=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] in states:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {job['state']}")


@pytest.fixture
def pipe():
    return FakePipeline(step_seconds=0.005)


@pytest.fixture
def client(tmp_path, pipe):
    with TestClient(create_app(pipe, tmp_path / "data", limits=Limits(max_frames=129))) as c:
        yield c


def test_text_job_runs_and_result_downloads(client, tmp_path):
    r = client.post("/v1/jobs", data={"prompt": "a red ball", "frames": 5, "width": 48, "height": 32, "seed": 3})
    assert r.status_code == 201, r.text
    job = wait(client, r.json()["id"])
    assert job["state"] == "done" and job["progress"] == {"step": 4, "total": 4}
    assert job["media_type"] == "video/mp4" and job["frames"] == 5
    res = client.get(job["result_url"])
    assert res.status_code == 200 and res.headers["content-type"] == "video/mp4"
    (tmp_path / "out.mp4").write_bytes(res.content)
    frames, _ = read_video(tmp_path / "out.mp4")
    assert frames.shape == (5, 32, 48, 3)
    listed = client.get("/v1/jobs").json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and listed["counts"]["done"] == 1


def test_one_frame_result_is_png(client):
    job = wait(client, client.post("/v1/jobs", data={"prompt": "a still", "frames": 1}).json()["id"])
    assert job["media_type"] == "image/png"
    res = client.get(job["result_url"])
    assert res.headers["content-type"] == "image/png" and res.content[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("mode,files,form,expect", [
    ("image", {"image": "a.png"}, {}, {"image"}),
    ("image", {"image": "a.png", "last_image": "b.png"}, {}, {"image", "last_image"}),
    ("extend", {"video": "v.mp4"}, {"direction": "backward"}, {"extend"}),
    ("connect", {"video_a": "a.mp4", "video_b": "b.mp4"}, {}, {"connect"}),
    ("loop", {}, {}, {"loop"}),
    ("edit", {"video": "v.mp4"}, {"strength": 0.5}, {"edit"}),
])
def test_every_mode_reaches_the_pipeline(client, pipe, tmp_path, mode, files, form, expect):
    up = {k: (n, media(tmp_path, n, 1 if n.endswith(".png") else 6), "image/png" if n.endswith(".png") else "video/mp4")
          for k, n in files.items()}
    r = client.post("/v1/jobs", data={"prompt": "p", "mode": mode, **form}, files=up)
    assert r.status_code == 201, r.text
    job = wait(client, r.json()["id"])
    assert job["state"] == "done", job
    _, kw = pipe.calls[-1]
    given = {k for k in ("image", "last_image", "extend", "connect", "edit") if kw[k] is not None} | (
        {"loop"} if kw["loop"] else set())
    assert given == expect
    if mode == "extend":
        assert kw["direction"] == "backward"
    if mode == "edit":
        assert job["params"]["frames"] == 5  # the 1 + 4k prefix of the 6-frame input
    for path in [kw[k] for k in ("image", "last_image", "extend", "edit") if kw[k]] + list(kw["connect"] or []):
        assert not Path(path).exists()  # the upload ends with its job (issue 17)


class TextOnly(FakePipeline):
    """A pipeline from before the conditioning modes: no `modes`."""


def test_unsupported_mode_is_refused_at_submit(tmp_path):
    pipe = TextOnly(step_seconds=0)
    del pipe.modes  # getattr(pipe, "modes", {"text"})
    with TestClient(create_app(pipe, tmp_path / "d")) as c:
        r = c.post("/v1/jobs", data={"prompt": "p", "mode": "extend"},
                   files={"video": ("v.mp4", media(tmp_path, "v.mp4", 5), "video/mp4")})
        assert r.status_code == 422
        assert r.json()["detail"] == "mode 'extend' is not supported by this model/pipeline yet"
        assert c.get("/v1/limits").json()["supported_modes"] == ["text"]
        assert c.post("/v1/jobs", data={"prompt": "p"}).status_code == 201
        assert not any((tmp_path / "d" / "uploads").iterdir())  # refused before any upload was stored


def test_mode_failing_at_run_time_fails_the_job_with_a_reason(tmp_path):
    class NoLoop(FakePipeline):
        def save(self, request, path, callback=None):
            if request.mode == "loop":
                raise NotImplementedError("loop")
            return super().save(request, path, callback)

    with TestClient(create_app(NoLoop(step_seconds=0), tmp_path / "d")) as c:
        job = wait(c, c.post("/v1/jobs", data={"prompt": "p", "mode": "loop"}).json()["id"])
        assert job["state"] == "failed" and "mode 'loop' is not supported" in job["error"]
        assert wait(c, c.post("/v1/jobs", data={"prompt": "p"}).json()["id"])["state"] == "done"  # worker lives on


def test_pipeline_error_fails_job_and_worker_continues(tmp_path):
    class Boom(FakePipeline):
        def save(self, request, path, callback=None):
            if request.prompt == "boom":
                raise RuntimeError("out of memory")
            return super().save(request, path, callback)

    with TestClient(create_app(Boom(step_seconds=0), tmp_path / "d")) as c:
        bad = c.post("/v1/jobs", data={"prompt": "boom"}).json()["id"]
        good = c.post("/v1/jobs", data={"prompt": "fine"}).json()["id"]
        assert wait(c, bad)["error"] == "RuntimeError: out of memory"
        assert wait(c, good)["state"] == "done"
        assert c.get(f"/v1/jobs/{bad}/result").status_code == 409


@pytest.mark.parametrize("form,limit,text", [
    ({"height": 30}, "size", "nearest valid: 16 or 32"),
    ({"frames": 10}, "size", "nearest valid: 9 or 13"),
    ({"frames": 1001}, "max_frames", "frames must be between 1 and 129"),
    ({"steps": 0}, "max_steps", "steps must be between 1 and 200"),
    ({"steps": 500}, "max_steps", "500"),
    ({"guidance": -1}, "max_guidance", "guidance"),
    ({"width": 4096}, "max_width", "4096"),
    ({"prompt": "x" * 2001}, "max_prompt_chars", "2001 characters"),
    ({"prompt": "   "}, "prompt", "non-empty"),
    ({"mode": "dance"}, "mode", "unknown mode 'dance'"),
    ({"mode": "extend"}, "video", "needs an upload in field 'video'"),
    ({"mode": "edit", "strength": 0}, "video", "needs an upload"),
    ({"sampler": "magic"}, "sampler", "unknown sampler"),
])
def test_bad_input_names_the_limit(client, form, limit, text):
    r = client.post("/v1/jobs", data={"prompt": "p", **form})
    assert r.status_code == 422, r.text
    assert r.json()["limit"] == limit and text in r.json()["detail"]
    assert client.get("/v1/jobs").json()["jobs"] == []


def test_bad_uploads(client, tmp_path):
    png = media(tmp_path, "a.png")
    post = lambda files, **form: client.post("/v1/jobs", data={"prompt": "p", "mode": "image", **form}, files=files)
    r = post({"image": ("a.txt", b"hello", "text/plain")})
    assert r.status_code == 415 and r.json()["limit"] == "upload_type"
    r = post({"image": ("a.png", b"\x89PNG not really an image", "image/png")})
    assert r.status_code == 422 and "not a decodable image or video" in r.json()["detail"]
    r = post({"image": ("a.png", png, "image/png")}, width=64)  # 32x32 image into a 64-wide video
    assert r.status_code == 422 and "resize it" in r.json()["detail"]
    r = post({"image": ("a.png", png, "image/png"), "video": ("v.png", png, "image/png")})
    assert r.status_code == 422 and r.json()["limit"] == "video"
    assert not any((tmp_path / "data" / "uploads").iterdir())  # refused uploads are not kept


def test_upload_size_limit(tmp_path):
    with TestClient(create_app(FakePipeline(step_seconds=0), tmp_path / "d", limits=Limits(max_upload_bytes=1000))) as c:
        big = media(tmp_path, "big.png", size=(64, 64))
        assert len(big) > 1000
        r = c.post("/v1/jobs", data={"prompt": "p", "mode": "image"}, files={"image": ("big.png", big, "image/png")})
        assert r.status_code == 413 and r.json()["limit"] == "max_upload_bytes"
        r = c.post("/v1/jobs", content=b"x" * (2 << 20),
                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413  # refused by Content-Length before parsing


def test_client_file_names_never_become_paths(client, tmp_path):
    r = client.post("/v1/jobs", data={"prompt": "p", "mode": "image"},
                    files={"image": ("../../../evil.png", media(tmp_path, "a.png"), "application/octet-stream")})
    assert r.status_code == 201, r.text
    stored = list((tmp_path / "data" / "uploads").iterdir())
    assert len(stored) == 1 and stored[0].stem.isalnum() and len(stored[0].stem) == 32 and stored[0].suffix == ".png"
    assert not (tmp_path / "evil.png").exists() and not (tmp_path.parent / "evil.png").exists()
    assert client.get("/v1/jobs/..%2F..%2Fjobs.sqlite3/result").status_code == 404


def test_queue_limit_and_cancel_queued(tmp_path):
    app = create_app(FakePipeline(step_seconds=0), tmp_path / "d", limits=Limits(max_queue=2), start_worker=False)
    with TestClient(app) as c:
        a, b = (c.post("/v1/jobs", data={"prompt": f"p{i}"}).json() for i in range(2))
        assert (a["position"], b["position"]) == (0, 1)
        r = c.post("/v1/jobs", data={"prompt": "p3"})
        assert r.status_code == 429 and r.json()["limit"] == "max_queue"
        assert c.post(f"/v1/jobs/{a['id']}/cancel").json()["state"] == "cancelled"
        assert c.get(f"/v1/jobs/{b['id']}").json()["position"] == 0
        assert c.post(f"/v1/jobs/{a['id']}/cancel").status_code == 409  # already cancelled
        assert c.post("/v1/jobs", data={"prompt": "p3"}).status_code == 201  # room again
        assert c.post("/v1/jobs/nope/cancel").status_code == 404
        assert c.get("/v1/jobs/nope").status_code == 404
        assert c.get(f"/v1/jobs/{b['id']}/result").status_code == 409
        assert c.get("/v1/jobs", params={"state": "cancelled"}).json()["jobs"][0]["id"] == a["id"]
        assert c.get("/v1/jobs", params={"state": "bogus"}).status_code == 422


def test_cancel_running_job_between_steps(tmp_path):
    pipe = FakePipeline(step_seconds=0.05)
    with TestClient(create_app(pipe, tmp_path / "d")) as c:
        job_id = c.post("/v1/jobs", data={"prompt": "long", "steps": 100}).json()["id"]
        wait(c, job_id, states=("running",))
        while c.get(f"/v1/jobs/{job_id}").json()["progress"]["step"] < 2:
            time.sleep(0.02)
        assert c.post(f"/v1/jobs/{job_id}/cancel").json()["cancel_requested"] is True
        job = wait(c, job_id)
        assert job["state"] == "cancelled" and 2 <= job["progress"]["step"] < 100
        assert not any((tmp_path / "d" / "results").iterdir())
        assert wait(c, c.post("/v1/jobs", data={"prompt": "next"}).json()["id"])["state"] == "done"


def test_jobs_run_in_order_received(client):
    ids = [client.post("/v1/jobs", data={"prompt": f"job {i}", "steps": 2}).json()["id"] for i in range(6)]
    jobs = [wait(client, i) for i in ids]
    starts = [j["started_at"] for j in jobs]
    assert starts == sorted(starts) and all(j["state"] == "done" for j in jobs)
    assert [j["id"] for j in client.get("/v1/jobs").json()["jobs"]] == ids[::-1]  # newest first


def test_token_required_on_every_api_call(tmp_path):
    with TestClient(create_app(FakePipeline(step_seconds=0), tmp_path / "d", token="s3cret")) as c:
        for method, path in [("get", "/v1/health"), ("get", "/v1/limits"), ("get", "/v1/jobs"), ("post", "/v1/jobs"),
                             ("get", "/v1/jobs/x"), ("get", "/v1/jobs/x/result"), ("post", "/v1/jobs/x/cancel")]:
            r = getattr(c, method)(path)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"] == "Bearer"
        assert c.get("/v1/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = {"Authorization": "Bearer s3cret"}
        job = c.post("/v1/jobs", data={"prompt": "p"}, headers=ok).json()
        assert wait(c, job["id"], headers=ok)["state"] == "done"
        assert c.get(f"/v1/jobs/{job['id']}/result", headers=ok).status_code == 200
        assert c.get("/").status_code == 200  # the page itself holds no data; it asks for the token


def test_openapi_schema_lists_versioned_paths(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in ["/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result", "/v1/jobs/{job_id}/cancel",
              "/v1/health", "/v1/limits"]:
        assert p in paths
    assert "multipart/form-data" in paths["/v1/jobs"]["post"]["requestBody"]["content"]
    assert client.get("/v1/health").json()["worker_alive"] is True


def test_page_uses_no_external_resources(client):
    page = client.get("/").text
    for asset in ["/static/app.js", "/static/style.css"]:
        assert client.get(asset).status_code == 200
    for text in [page, client.get("/static/app.js").text, client.get("/static/style.css").text]:
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_data_dir_is_held_by_one_server(tmp_path):
    with TestClient(create_app(FakePipeline(step_seconds=0), tmp_path / "d")):
        with pytest.raises(RuntimeError, match="in use by another tenku serve process"):
            JobStore(tmp_path / "d").lock()
    JobStore(tmp_path / "d").lock()  # released at shutdown


def test_shutdown_puts_the_running_job_back_in_the_queue(tmp_path):
    with TestClient(create_app(FakePipeline(step_seconds=0.05), tmp_path / "d")) as c:
        running = c.post("/v1/jobs", data={"prompt": "a", "steps": 200}).json()["id"]
        queued = c.post("/v1/jobs", data={"prompt": "b"}).json()["id"]
        wait(c, running, states=("running",))
    with TestClient(create_app(FakePipeline(step_seconds=0), tmp_path / "d", start_worker=False)) as c:
        jobs = {j["id"]: j for j in c.get("/v1/jobs").json()["jobs"]}
        assert jobs[running]["state"] == jobs[queued]["state"] == "queued"
        assert (jobs[running]["position"], jobs[queued]["position"]) == (0, 1)
