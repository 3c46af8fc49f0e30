"""Tenku World data set writer and CLI: decodable mp4s, manifest format, determinism."""

import argparse

import numpy as np
import pytest

from tenku.data.video_io import read_video
from tenku.world import Scene, render
from tenku.world.cli import main, register_cli
from tenku.data.clips import read_records
from tenku.world.make import make_dataset


def test_make_cli_writes_decodable_clips_and_a_manifest(tmp_path):
    out = tmp_path / "w"
    rc = main(["make", "--out", str(out), "--count", "6", "--split", "combo", "--seed", "3", "--sizes",
               "32x32", "24x40", "40x24", "--frames-choices", "1", "5", "--fps", "6", "--workers", "2", "-q"])
    assert rc == 0
    lines = read_records(out / "manifest.jsonl")
    assert len(lines) == 6 and len({line["seed"] for line in lines}) == 6
    for line in lines:
        assert {"video", "caption", "fps", "frames", "height", "width", "split", "seed", "scene", "id"} <= set(line)
        assert line["split"] == "combo" and line["fps"] == 6 and line["frames"] in (1, 5)
        video, fps = read_video(out / line["video"])
        assert video.shape == (line["frames"], line["height"], line["width"], 3)
        scene = Scene.from_dict(line["scene"], fps=line["fps"], height=line["height"], width=line["width"])
        assert scene.to_dict() == line["scene"] and scene.frames == line["frames"]
        assert len(line["scene"]["states"][0]) == len(line["scene"]["objects"])
        # the manifest re-renders the clip: only H.264 loss (mostly chroma at edges) separates them
        err = np.abs(render(scene).astype(int) - video)
        assert np.median(err) <= 2 and err.mean() < 6
    assert {(line["height"], line["width"]) for line in lines} <= {(32, 32), (24, 40), (40, 24)}


def test_make_is_deterministic_across_worker_counts(tmp_path):
    a = make_dataset(tmp_path / "a", 3, "train", seed=5, sizes=[(32, 32)], frames=[5], workers=1, progress=False)
    b = make_dataset(tmp_path / "b", 3, "train", seed=5, sizes=[(32, 32)], frames=[5], workers=2, progress=False)
    assert a.read_bytes() == b.read_bytes()
    for line in read_records(a):
        va, _ = read_video(a.parent / line["video"])
        vb, _ = read_video(b.parent / line["video"])
        assert np.array_equal(va, vb)
    c = make_dataset(tmp_path / "c", 3, "train", seed=6, sizes=[(32, 32)], frames=[5], workers=1, progress=False)
    assert {x["seed"] for x in read_records(c)}.isdisjoint(x["seed"] for x in read_records(a))


def test_register_cli_adds_world_make():
    p = argparse.ArgumentParser()
    register_cli(p.add_subparsers(dest="command"))
    args = p.parse_args(["world", "make", "--out", "x", "--count", "2", "--sizes", "64x64", "48x80"])
    assert args.sizes == [(64, 64), (48, 80)] and args.split == "train" and callable(args.func)
    with pytest.raises(SystemExit):
        p.parse_args(["world", "make", "--out", "x", "--count", "2", "--split", "val"])


def test_make_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    for bad, says in ((["--sizes", "64x64,48x80"], "size '64x64,48x80' must look like HEIGHTxWIDTH"),
                      (["--sizes", "0x64"], "height and width must be positive"),
                      (["--frames-choices", "1,5"], "invalid int value: '1,5'")):
        with pytest.raises(SystemExit) as e:
            main(["make", "--out", str(tmp_path), "--count", "2", *bad])
        assert e.value.code == 2 and says in capsys.readouterr().err
    assert main(["make", "--out", str(tmp_path), "--count", "0", "-q"]) == 2
    err = capsys.readouterr().err
    assert err == "python -m tenku.world: error: count must be >= 1, got 0\n"


def test_make_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split"):
        make_dataset(tmp_path, 2, "val")
    with pytest.raises(ValueError, match="count"):
        make_dataset(tmp_path, 0, "train")
