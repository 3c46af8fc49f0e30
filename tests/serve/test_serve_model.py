"""`tenku serve` over the real pipeline with a random tiny model: jobs in several modes, real size errors."""

import time

import numpy as np
import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from tenku.cli import build_parser  # noqa: E402
from tenku.pipeline import init_model, load_pipeline  # noqa: E402
from tenku.serve.app import create_app  # noqa: E402
from tenku.data.video_io import read_video, write_video  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    pipe = load_pipeline(init_model(tmp / "tiny", "tiny", seed=0))
    with TestClient(create_app(pipe, tmp / "data")) as c:
        yield c


def wait(c, job_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(job)


def test_real_pipeline_text_image_and_extend(client, tmp_path):
    info = client.get("/v1/limits").json()
    assert set(info["supported_modes"]) == {"text", "image", "extend", "connect", "loop", "edit"}
    assert info["stride"] == 16 and info["defaults"]["frames"] == 9

    text = wait(client, client.post("/v1/jobs", data={"prompt": "a red ball", "frames": 5, "steps": 2}).json()["id"])
    assert text["state"] == "done" and text["progress"] == {"step": 2, "total": 2}, text
    (tmp_path / "t.mp4").write_bytes(client.get(text["result_url"]).content)
    clip = read_video(tmp_path / "t.mp4")[0]
    assert clip.shape == (5, 32, 32, 3)

    write_video(tmp_path / "in.mp4", np.full((5, 32, 32, 3), 90, np.uint8), 8)
    ext = client.post("/v1/jobs", data={"prompt": "go on", "mode": "extend", "frames": 4, "steps": 2},
                      files={"video": ("in.mp4", (tmp_path / "in.mp4").read_bytes(), "video/mp4")})
    assert ext.status_code == 201, ext.text
    ext = wait(client, ext.json()["id"])
    assert ext["state"] == "done", ext
    assert ext["frames"] >= 9  # the 5 given frames kept, then at least 4 new ones


def test_real_check_size_message_passes_through(client):
    r = client.post("/v1/jobs", data={"prompt": "p", "width": 40, "frames": 6})
    assert r.status_code == 422
    assert "nearest valid: 5 or 9" in r.json()["detail"] and "nearest valid: 32 or 48" in r.json()["detail"]


def test_serve_command_is_wired():
    args = build_parser().parse_args(["serve", "--port", "9999", "--data-dir", "/tmp/x"])
    assert args.host == "127.0.0.1" and args.port == 9999 and args.func.__name__ == "cmd_serve"
