"""`POST /v1/jobs` and `tenku generate` are one request: a storyboard and a long duration make the same video
through both (a tiny model whose max_frames is 9, so two seconds already need several windows), 60 s is
accepted and planned as its windows, and bad input is refused with the command line's words."""

import numpy as np
import pytest
import torch

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

import tenku.pipeline  # noqa: E402
from tenku.checkpoint import save_model_dir  # noqa: E402
from tenku.cli import main  # noqa: E402
from tenku.config import preset  # noqa: E402
from tenku.models.dit import DiT  # noqa: E402
from tenku.pipeline import load_pipeline  # noqa: E402
from tenku.request import GenerateRequest, window_plan  # noqa: E402
from tenku.serve.app import create_app  # noqa: E402
from tenku.models.vae import VideoVAE  # noqa: E402
from tenku.data.video_io import VideoWriter, read_video, write_image, write_video  # noqa: E402
from test_serve_model import wait  # noqa: E402

STORYBOARD = "0-1s: a red ball rolls right; 1-2s: a blue square falls"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    cfg = preset("tiny")
    cfg.sample.max_frames = 9  # windows of 9 frames: 2 s at 8 fps is 3 windows
    torch.manual_seed(0)
    vae, dit = VideoVAE(cfg.vae), DiT(cfg.dit)
    for p in dit.parameters():  # a random but non-degenerate transformer (zero-init outputs nothing)
        p.data.normal_(0, 0.05)
    return save_model_dir(tmp_path_factory.mktemp("m") / "tiny9", cfg, vae, dit)


@pytest.fixture(scope="module")
def client(model_dir, tmp_path_factory):
    with TestClient(create_app(load_pipeline(model_dir), tmp_path_factory.mktemp("serve") / "data")) as c:
        yield c


class Recorder(VideoWriter):
    """The frames given to each mp4, by file name: H.264 is lossy and its bytes vary from run to run (threads),
    so "the same video" is the same frames going into the encoder."""

    written: dict = {}

    def write(self, frames) -> None:
        self.written.setdefault(self.path.name, []).append(np.asarray(frames).copy())
        super().write(frames)


@pytest.fixture
def written(monkeypatch):
    monkeypatch.setattr(tenku.pipeline, "VideoWriter", Recorder)
    Recorder.written = {}
    return Recorder.written


def api_video(client, tmp_path, form):
    r = client.post("/v1/jobs", data=form)
    assert r.status_code == 201, r.text
    job = wait(client, r.json()["id"])
    assert job["state"] == "done", job
    (tmp_path / "api.mp4").write_bytes(client.get(job["result_url"]).content)
    return job, read_video(tmp_path / "api.mp4")[0]


@pytest.mark.parametrize("prompt,form,frames", [
    (STORYBOARD, {}, 16),  # as long as the storyboard
    (STORYBOARD, {"seconds": 2.5}, 20),
    ("a red ball rolls right", {"seconds": 2}, 16),  # past max_frames: windows, the exact length
])
def test_api_makes_the_cli_video(client, model_dir, tmp_path, written, prompt, form, frames):
    args = [f"--{k}={v}" for k, v in form.items()]
    assert main(["generate", prompt, "--model", str(model_dir), "--device", "cpu", "--steps", "2", "--seed", "3",
                 *args, "-o", str(tmp_path / "cli.mp4"), "-q"]) == 0
    job, api_mp4 = api_video(client, tmp_path, {"prompt": prompt, "steps": 2, "seed": 3, **form})
    cli, api = (np.concatenate(written[name]) for name in ("cli.mp4", f"{job['id']}.partial.mp4"))
    assert cli.shape == api.shape == api_mp4.shape == (frames, 32, 32, 3) and job["frames"] == frames
    assert np.array_equal(cli, api)  # bit for bit
    assert len(written["cli.mp4"]) == len(window_plan(frames, 9, 5))  # streamed window by window
    assert np.abs(read_video(tmp_path / "cli.mp4")[0].astype(int) - api_mp4).mean() < 4  # the files, through H.264
    assert job["progress"]["total"] == 2 * len(window_plan(frames, 9, 5))  # steps over every window
    python = client.app.state.pipe.run(GenerateRequest(prompt, steps=2, seed=3, **form)).frames.numpy()
    assert np.array_equal(python.shape, api.shape) and python.std() > 0  # Python too; not a blank video


def test_a_sixty_second_storyboard_is_the_cli_video(client, model_dir, tmp_path, written):
    """Issue 18's case end to end: a storyboard prompt and a 60 s duration, sent to `POST /v1/jobs` and to
    `tenku generate` with the same seed, give the same 480 frames (119 windows), bit for bit."""
    story = "0-20s: a red ball rolls right; 20-40s: a blue square falls; 40-45s: a green ball bounces"
    form = {"seconds": 60, "height": 16, "width": 16}
    assert main(["generate", story, "--model", str(model_dir), "--device", "cpu", "--steps", "1", "--seed", "5",
                 *[f"--{k}={v}" for k, v in form.items()], "-o", str(tmp_path / "cli.mp4"), "-q"]) == 0
    job, api_mp4 = api_video(client, tmp_path, {"prompt": story, "steps": 1, "seed": 5, **form})
    cli, api = (np.concatenate(written[name]) for name in ("cli.mp4", f"{job['id']}.partial.mp4"))
    assert cli.shape == api.shape == api_mp4.shape == (480, 16, 16, 3) and job["frames"] == 480
    assert np.array_equal(cli, api)  # bit for bit
    assert len(written["cli.mp4"]) == len(window_plan(480, 9, 5)) == 119


def test_a_storyboard_switches_the_prompt_at_the_next_window(client):
    pipe = client.app.state.pipe
    run = lambda prompt, **kw: pipe.run(GenerateRequest(prompt, steps=2, seed=3, **kw)).frames.numpy()  # noqa: E731
    story, plain = run(STORYBOARD), run("a red ball rolls right", seconds=2)
    first = run("a red ball rolls right", frames=9)  # window 0 alone: one 9-frame clip
    assert story.shape == plain.shape == (16, 32, 32, 3)
    assert np.array_equal(story[:9], first) and np.array_equal(plain[:9], first)
    assert not np.array_equal(story[9:], plain[9:])  # from 9/8 s on: the second shot's prompt


def test_sixty_seconds_is_accepted_and_planned_as_windows(client, tmp_path):
    pipe = client.app.state.pipe
    checked = pipe.check(GenerateRequest(STORYBOARD.replace("1-2s", "1-60s")))
    assert checked.request.frames == 480 and len(checked.windows) == len(window_plan(480, 9, 5)) == 119
    app = create_app(pipe, tmp_path / "queued", start_worker=False)  # accepted, not sampled
    with TestClient(app) as c:
        for form in ({"seconds": 60}, {"frames": 480}):
            r = c.post("/v1/jobs", data={"prompt": "a red ball rolls right", **form})
            assert r.status_code == 201, r.text
            assert r.json()["params"]["frames"] == 480 and r.json()["params"]["window"] == 9
        r = c.post("/v1/jobs", data={"prompt": "a red ball rolls right", "seconds": 61})
        assert r.status_code == 422 and r.json()["limit"] == "max_frames"


@pytest.mark.parametrize("args,form", [
    (["--frames", "8"], {"frames": 8}),
    (["--height", "50"], {"height": 50}),
    (["--seconds", "5", "--window", "6"], {"seconds": 5, "window": 6}),
    (["--prompt=0-1s: a; 2-3s: b"], {"prompt": "0-1s: a; 2-3s: b"}),
    (["--prompt=0-1s: a; 1-2s: b", "--image", "{img}"], {"prompt": "0-1s: a; 1-2s: b", "mode": "image", "image": "{img}"}),
    (["--image", "{img}", "--width", "48"], {"mode": "image", "image": "{img}", "width": 48}),
    (["--edit", "{video}", "--strength", "1.5"], {"mode": "edit", "video": "{video}", "strength": 1.5}),
    (["--extend", "{video}", "--height", "64"], {"mode": "extend", "video": "{video}", "height": 64}),
])
def test_bad_input_is_refused_with_the_cli_message(client, model_dir, tmp_path, capsys, args, form):
    img = write_image(tmp_path / "a.png", np.zeros((32, 32, 3), np.uint8))
    video = write_video(tmp_path / "v.mp4", np.zeros((5, 32, 32, 3), np.uint8), 8)
    paths = {"{img}": str(img), "{video}": str(video)}
    args = [paths.get(a, a) for a in args]
    prompt = next((a.split("=", 1)[1] for a in args if a.startswith("--prompt=")), "a red ball")
    args = [a for a in args if not a.startswith("--prompt=")]
    assert main(["generate", prompt, "--model", str(model_dir), "-o", str(tmp_path / "o.mp4"), "-q", *args]) == 2
    cli = capsys.readouterr().err.strip().removeprefix("tenku: error: ")
    files = {k: (paths[v], open(paths[v], "rb").read(), "image/png" if v == "{img}" else "video/mp4")
             for k, v in form.items() if v in paths}
    data = {"prompt": "a red ball"} | {k: v for k, v in form.items() if v not in paths}
    r = client.post("/v1/jobs", data=data, files=files)
    assert r.status_code == 422 and r.json()["detail"] == cli, (r.json(), cli)


def test_a_storyboard_file_is_read_by_the_cli_never_by_the_server(client, model_dir, tmp_path, written):
    story = tmp_path / "story.json"
    story.write_text('[{"start": 0, "end": 1, "prompt": "a red ball"}, {"start": 1, "end": 1.5, "prompt": "a blue ball"}]')
    assert main(["generate", str(story), "--model", str(model_dir), "--steps", "1", "-o", str(tmp_path / "s.mp4"),
                 "-q"]) == 0
    assert len(np.concatenate(written["s.mp4"])) == 12 and len(written["s.mp4"]) == 2  # 1.5 s: two windows
    job = wait(client, client.post("/v1/jobs", data={"prompt": str(story), "steps": 1}).json()["id"])
    assert job["state"] == "done" and job["frames"] == 9  # a plain prompt: the model's default clip
