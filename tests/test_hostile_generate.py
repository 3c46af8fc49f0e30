"""Hostile `tenku generate` input: every bad size, number or output path exits 2 with a message naming the
limit, before any work; outputs are written atomically (issue 17, items 8 to 11)."""

import os
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from tenku.cli import main
from tenku.pipeline import init_model, load_pipeline
from tenku.request import frames_for_seconds
from tenku.data.video_io import VideoWriter, read_video, write_image, write_video


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return init_model(tmp_path_factory.mktemp("m") / "tiny", "tiny")


@pytest.fixture(scope="module")
def image(model_dir):
    return write_image(model_dir.parent / "a.png", np.zeros((32, 32, 3), np.uint8))


@pytest.fixture(scope="module")
def pipe(model_dir):
    return load_pipeline(model_dir)


def png_bomb(path, width=16000, height=16000):
    """A PNG whose header claims width x height pixels, with a few compressed rows: what a decoder would
    allocate in full (768 MB at 16000 x 16000) from a file of a few hundred bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = zlib.compress(b"\0" * (1 + 3 * width) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def generate(model_dir, tmp_path, *args):
    return main(["generate", "a red ball", "--model", str(model_dir), "-q", *args])


@pytest.mark.parametrize("args,text", [
    (["--height", "100000"], "height must be at most 8192 (got 100000)"),
    (["--height", "100000", "--width", "100000"], "width must be at most 8192"),
    (["--height", "4096", "--width", "4096"], "GB (upper estimate), more than the"),
    (["--seconds", "1e12"], "the longest video is 28800 frames"),
    (["--frames", "100001"], "frames must be an integer in [1, 28800], got 100001 (the longest video)"),
    (["--frames", "100001", "--image", "{tmp}/../a.png"], "in [1, 28800], got 100001"),
    (["--frames", "2001", "--height", "1024", "--width", "1024"], "GB (upper estimate)"),  # the output alone: 31 GB
    (["--guidance", "nan"], "guidance must be a number in [0, 100], got nan"),
    (["--fps", "nan"], "fps must be a number"),
    (["--fps", "-8"], "fps must be a number"),
    (["--fps", "0"], "fps must be a number"),
    (["--height", "0"], "height must be a positive multiple of 16 (got 0"),
    (["--steps", "0"], "steps must be an integer in [1, 1000], got 0"),
    (["--seconds", "-1"], "seconds must be a number"),
    (["--seconds", "5", "--window", "0"], "window (0)"),
    (["-o", "{tmp}"], "is a directory"),
    (["-o", "/proc/x.mp4"], "cannot write output /proc/x.mp4"),
    (["--frames", "9", "-o", "{tmp}/x.png"], "a PNG holds one frame"),
])
def test_bad_option_exits_2_before_any_work(model_dir, image, tmp_path, capsys, monkeypatch, args, text):
    monkeypatch.setenv("TENKU_MAX_MEMORY_GB", "2")  # the same refusals on any machine
    args = [a.replace("{tmp}/../a.png", str(image)).replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out.mp4")]
    t0 = time.monotonic()
    assert generate(model_dir, tmp_path, *args) == 2
    assert time.monotonic() - t0 < 20  # refused up front, not after sampling
    assert text in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists() and not any(p.suffix in (".mp4", ".png") for p in tmp_path.iterdir())


def test_image_bomb_is_refused_from_its_header(model_dir, tmp_path, capsys):
    bomb = png_bomb(tmp_path / "bomb.png")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert generate(model_dir, tmp_path, "--image", str(bomb), "-o", str(tmp_path / "o.mp4")) == 2
    assert "height must be at most 8192 (got 16000)" in capsys.readouterr().err
    assert generate(model_dir, tmp_path, "--image", str(bomb), "--width", "32", "--height", "32") == 2
    assert "image is 16000x16000 (WxH)" in capsys.readouterr().err
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024 < 300  # never decoded (768 MB)


def test_zero_is_a_value_not_the_default(pipe):
    for kw, text in [(dict(frames=0), r"frames must be 1 \+ 4k \(got 0"), (dict(height=0), "height must be a positive"),
                     (dict(steps=0), "steps must be"), (dict(fps=0), "fps must be"),
                     (dict(guidance=float("nan")), "guidance must be")]:
        with pytest.raises(ValueError, match=text):
            pipe.generate("p", **kw)


def test_a_duration_is_always_a_video(model_dir, tmp_path, pipe):
    assert frames_for_seconds(0.01, 8) == 5  # not a 1-frame png
    assert generate(model_dir, tmp_path, "--seconds", "0.1", "--steps", "1", "-o", str(tmp_path / "v.mp4")) == 0
    frames, _ = read_video(tmp_path / "v.mp4")
    assert len(frames) == 5


def test_failed_write_keeps_the_previous_file(tmp_path):
    frames = np.zeros((5, 16, 16, 3), np.uint8)
    good = write_video(tmp_path / "long.mp4", frames + 200, 8)
    before = good.read_bytes()
    with pytest.raises(RuntimeError):
        with VideoWriter(good, 8) as w:
            w.write(frames)
            raise RuntimeError("killed mid-video")
    assert good.read_bytes() == before and os.listdir(tmp_path) == ["long.mp4"]
    write_image(tmp_path / "one.png", frames[0])
    assert oct(os.stat(tmp_path / "one.png").st_mode & 0o777) == oct(0o666 & ~_umask())


def test_kill_9_mid_video_keeps_the_previous_file(tmp_path):
    good = write_video(tmp_path / "long.mp4", np.full((5, 16, 16, 3), 200, np.uint8), 8)
    before = good.read_bytes()
    script = ("import sys, time, numpy as np; from tenku.data.video_io import VideoWriter\n"
              "w = VideoWriter(sys.argv[1], 8)\n"
              "for i in range(10000):\n"
              "    w.write(np.random.randint(0, 255, (1, 64, 64, 3), np.uint8)); print(i, flush=True); time.sleep(0.01)\n")
    p = subprocess.Popen([sys.executable, "-c", script, str(good)], stdout=subprocess.PIPE, text=True)
    for _ in range(20):  # frames are being written
        p.stdout.readline()
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    assert good.read_bytes() == before
    assert read_video(good)[0].shape == (5, 16, 16, 3)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
