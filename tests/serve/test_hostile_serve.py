"""Hostile requests to the server (issue 17, items 12 and 13): the token and the body size are checked while the
body arrives, before any of it is spooled; an image's size is read from its header before it is decoded.
The app is driven as a plain ASGI callable, so the test sees exactly how many body chunks it pulled."""

import asyncio
import struct
import zlib

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from tenku.serve.app import create_app  # noqa: E402
from fake_pipeline import FakePipeline  # noqa: E402
from tenku.serve.limits import Limits  # noqa: E402

CHUNK = 64 * 1024
HEAD = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'


def post_chunked(app, headers, max_chunks=2000):
    """POST /v1/jobs with an endless chunked body (no Content-Length); returns (status, body, chunks pulled)."""
    pulled, out = 0, {}

    async def receive():
        nonlocal pulled
        if pulled >= max_chunks:  # the guard failed: stop the test instead of filling the disk
            return {"type": "http.disconnect"}
        pulled += 1
        body = HEAD if pulled == 1 else b"x" * CHUNK  # one file part that never ends
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] = out.get("body", b"") + message.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/jobs", "raw_path": b"/v1/jobs", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"multipart/form-data; boundary=b"), *headers],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    return out.get("status"), out.get("body", b""), pulled


@pytest.fixture
def app(tmp_path):
    return create_app(FakePipeline(step_seconds=0), tmp_path / "d", token="s3cret",
                      limits=Limits(max_upload_bytes=64 * 1024), start_worker=False)


def test_no_token_is_refused_before_any_body_byte(app):
    status, body, pulled = post_chunked(app, [])
    assert status == 401 and b'"limit": "token"' in body
    assert pulled == 0


def test_chunked_body_past_the_cap_is_refused_on_the_first_chunk_over(app):
    cap = 64 * 1024 * 5 + (1 << 20)  # per-file limit x upload fields + 1 MiB for the form fields
    status, body, pulled = post_chunked(app, [(b"authorization", b"Bearer s3cret")])
    assert status == 413 and b'"limit": "max_upload_bytes"' in body
    assert pulled == 1 + cap // CHUNK  # the head, then stopped at the first chunk past the cap, not at the end of the body


def png_header(width, height):
    """A PNG whose header claims width x height; its pixel data would decode to width*height*3 bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def test_image_bomb_is_refused_from_its_header(tmp_path):
    with TestClient(create_app(FakePipeline(step_seconds=0), tmp_path / "d")) as c:
        r = c.post("/v1/jobs", data={"prompt": "p", "mode": "image"},
                   files={"image": ("bomb.png", png_header(16000, 16000), "image/png")})
    assert r.status_code == 422
    assert r.json()["limit"] == "max_height" and "16000x16000" in r.json()["detail"]
    assert not list((tmp_path / "d").rglob("*.png"))  # the upload is removed


def test_a_job_that_keeps_killing_the_server_ends_failed_and_its_upload_is_removed(tmp_path):
    from tenku.serve.jobs import MAX_ATTEMPTS, JobStore

    d = tmp_path / "d"
    store = JobStore(d)
    store.upload_path("u.png").write_bytes(b"png")
    job = store.add("image", {"prompt": "p"}, {"image": "u.png"}, max_queue=10)
    for start in range(MAX_ATTEMPTS):
        assert store.claim_next()["id"] == job["id"]  # running when the process "dies"
        store.close()
        store = JobStore(d)  # the next start
        expected = "failed" if start == MAX_ATTEMPTS - 1 else "queued"
        assert store.recover()["failed"] == (expected == "failed")
        assert store.get(job["id"])["state"] == expected
    assert f"{MAX_ATTEMPTS} times" in store.get(job["id"])["error"]
    assert not store.upload_path("u.png").exists()


def test_uploads_are_removed_when_their_job_ends(tmp_path):
    from tenku.serve.jobs import JobStore

    store = JobStore(tmp_path / "d")
    store.upload_path("u.png").write_bytes(b"png")
    job = store.add("image", {"prompt": "p"}, {"image": "u.png"}, max_queue=10)
    store.claim_next()
    store.finish(job["id"], "r.png", 1)
    assert not store.upload_path("u.png").exists()


@pytest.mark.parametrize("form,limit,words", [
    ({"prompt": "p", "frames": "abc"}, "frames", "valid integer"),
    ({"prompt": ""}, "prompt", "prompt is required (a non-empty string)"),
    ({}, "prompt", "prompt is required"),
])
def test_type_errors_come_back_as_one_sentence_naming_the_field(tmp_path, form, limit, words):
    with TestClient(create_app(FakePipeline(step_seconds=0), tmp_path / "d", start_worker=False)) as c:
        r = c.post("/v1/jobs", data=form)
    assert r.status_code == 422
    body = r.json()
    assert body["limit"] == limit and isinstance(body["detail"], str) and words in body["detail"]


def test_second_server_on_one_data_dir_exits_before_loading_the_model(tmp_path, monkeypatch, capsys):
    import tenku.pipeline
    from tenku.serve.cli import main
    from tenku.serve.jobs import JobStore

    def never(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(tenku.pipeline, "load_pipeline", never)
    first = JobStore(tmp_path / "d")
    first.lock()
    try:
        assert main(["--data-dir", str(tmp_path / "d")]) == 2
    finally:
        first.unlock()
    assert "in use by another tenku serve process" in capsys.readouterr().err


@pytest.mark.parametrize("flag, words", [("--model", "model directory not found"),
                                         ("--lora", "LoRA adapter folder not found")])
def test_a_missing_model_or_adapter_is_one_line_and_exit_2(tmp_path, capsys, flag, words):
    from tenku.serve.cli import main

    assert main([flag, str(tmp_path / "nothing"), "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("case", ["missing model", "truncated weights", "missing adapter", "empty adapter folder",
                                  "bad lora scale", "cuda without CUDA"])
def test_a_bad_model_is_refused_by_every_entry_point_with_the_cli_line(tmp_path, capsys, case):
    """`tenku generate`, `tenku serve` and `python -m tenku.serve` refuse the same --model/--lora with the same
    one line (after their own `PROG: error: `), exit 2, no traceback."""
    from tenku.cli import main as tenku
    from tenku.pipeline import init_model
    from tenku.serve.cli import main as serve

    if case == "cuda without CUDA" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    model = init_model(tmp_path / "m")
    (tmp_path / "broken").mkdir()
    for f in ("config.json", "vae.safetensors"):
        (tmp_path / "broken" / f).write_bytes((model / f).read_bytes())
    (tmp_path / "broken" / "dit.safetensors").write_bytes((model / "dit.safetensors").read_bytes()[:100])
    (tmp_path / "adapter").mkdir()
    flags = {"missing model": ["--model", str(tmp_path / "nothing")],
             "truncated weights": ["--model", str(tmp_path / "broken")],
             "missing adapter": ["--model", str(model), "--lora", str(tmp_path / "nothing")],
             "empty adapter folder": ["--model", str(model), "--lora", str(tmp_path / "adapter")],
             "bad lora scale": ["--model", str(model), "--lora", str(tmp_path / "adapter"), "--lora-scale", "9"],
             "cuda without CUDA": ["--model", str(model), "--device", "cuda"]}[case]

    def refusal(prog: str) -> str:
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and err.startswith(f"{prog}: error: ")
        return err.strip().removeprefix(f"{prog}: error: ")

    assert tenku(["generate", "a red ball", *flags, "-o", str(tmp_path / "o.mp4"), "-q"]) == 2
    cli = refusal("tenku")
    assert tenku(["serve", *flags, "--data-dir", str(tmp_path / "d1")]) == 2
    assert refusal("tenku") == cli
    assert serve([*flags, "--data-dir", str(tmp_path / "d2")]) == 2
    assert refusal("python -m tenku.serve") == cli


@pytest.mark.parametrize("field", ["frames", "height", "width"])
def test_zero_is_refused_not_defaulted(tmp_path, field):
    with TestClient(create_app(FakePipeline(step_seconds=0), tmp_path / "d", start_worker=False)) as c:
        r = c.post("/v1/jobs", data={"prompt": "p", field: 0})
    assert r.status_code == 422 and r.json()["limit"] == f"max_{field}" and "got 0" in r.json()["detail"]


def test_over_a_real_socket_the_refusal_comes_before_the_body(tmp_path):
    """The same through uvicorn on loopback: without a token the 401 arrives before one body byte is sent;
    with it, an endless chunked upload is answered 413 after about the cap, not read to the end."""
    import socket

    from tenku.serve.background import serve_in_thread

    app = create_app(FakePipeline(step_seconds=0), tmp_path / "d", token="s3cret",
                     limits=Limits(max_upload_bytes=64 * 1024), start_worker=False)
    cap = 64 * 1024 * 5 + (1 << 20)

    def open_post(base, auth):
        host, port = base.removeprefix("http://").split(":")
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + auth +
                  b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
        return s

    with serve_in_thread(app) as base:
        s = open_post(base, b"")
        assert s.recv(65536).startswith(b"HTTP/1.1 401")  # nothing of the body was sent
        s.close()
        s = open_post(base, b"Authorization: Bearer s3cret\r\n")
        s.settimeout(0.2)
        sent, reply = 0, b""
        part = HEAD + b"x" * (CHUNK - len(HEAD))
        while sent < 100 * cap and not reply:
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                sent += len(part)
                reply = s.recv(65536)
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            part = b"x" * CHUNK
        s.settimeout(5)
        while b"}" not in reply:  # the headers and the JSON body may come in separate packets
            more = s.recv(65536)
            if not more:
                break
            reply += more
        s.close()
    assert reply.startswith(b"HTTP/1.1 413") and b"max_upload_bytes" in reply
    assert sent < cap + (8 << 20)  # the cap plus what the sockets' buffers held
