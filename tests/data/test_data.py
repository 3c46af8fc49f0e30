"""Manifests, bucket assignment, decoding, skipping of bad files, collate."""

import json
import logging

import numpy as np
import pytest
import torch

from tenku.data.buckets import BucketBatchSampler
from tenku.data.clips import (BucketConfig, Clip, VideoDataset, assign_bucket, collate_videos, frame_picks, read_manifest,
                        read_records, resize_crop)
from tenku.data.video_io import write_image, write_video

CFG = BucketConfig(sizes=[(32, 32), (32, 48), (48, 32)], frames=[1, 5, 9], stride=16)


def moving_square(T, H, W, brightness_by_frame=False):
    """A red square moving right; with brightness_by_frame the background grey level encodes the frame index."""
    f = np.zeros((T, H, W, 3), np.uint8)
    for t in range(T):
        if brightness_by_frame:
            f[t] = 20 * t
        x = (3 * t) % max(1, W - 8)
        f[t, H // 4 : H // 4 + 8, x : x + 8] = (230, 40, 40)
    return f


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    write_video(d / "square.mp4", moving_square(12, 32, 32), fps=8)
    write_video(d / "wide.mp4", moving_square(10, 32, 48), fps=8)
    write_video(d / "tall.mp4", moving_square(9, 48, 32), fps=8)
    write_video(d / "big.mp4", moving_square(6, 64, 64), fps=8)
    write_video(d / "short.mp4", moving_square(3, 32, 32), fps=8)
    write_image(d / "still.png", moving_square(1, 32, 32)[0])
    (d / "broken.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    data = (d / "square.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    return d


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# ----------------------------------------------------------------------------- manifests

def test_jsonl_and_csv_manifests_parse_the_same(tmp_path):
    write_jsonl(tmp_path / "m.jsonl", [
        {"video": "a.mp4", "caption": "a red ball", "fps": 8, "frames": 17, "height": 32, "width": 48, "scene": {}},
        {"video": "/abs/b.png", "caption": "a still, with a comma"},
    ])
    (tmp_path / "m.csv").write_text('video,caption,fps,start,end,frames,height,width\n'
                                    'a.mp4,a red ball,8,,,17,32,48\n'
                                    '/abs/b.png,"a still, with a comma",,,,,,\n')
    a, b = read_manifest(tmp_path / "m.jsonl"), read_manifest(tmp_path / "m.csv")
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        assert (x.video, x.caption, x.fps, x.frames, x.height, x.width, x.start) == \
               (y.video, y.caption, y.fps, y.frames, y.height, y.width, y.start)
    assert a[0].video == str((tmp_path / "a.mp4").resolve())  # relative to the manifest's folder
    assert a[1].video == "/abs/b.png" and a[1].fps is None and a[1].is_image
    assert (a[0].frames, a[0].height, a[0].width, a[0].line) == (17, 32, 48, 1)
    assert isinstance(b[0].frames, int) and b[1].line == 3


@pytest.mark.parametrize("text, message", [
    ('{"video": "a.mp4", "caption": "x"}\n\n{"video": "b.mp4", "caption": "y"\n', "m.jsonl:3: not valid JSON"),
    ('{"video": "a.mp4", "caption": "x"}\n{"caption": "y"}\n', "m.jsonl:2: 'video'"),
    ('{"video": "a.mp4", "caption": "x", "fps": -2}\n', "m.jsonl:1: 'fps' must be > 0"),
    ('{"video": "a.mp4", "caption": "x", "frames": 2.5}\n', "m.jsonl:1: 'frames' must be an integer"),
    ('{"video": "a.mp4", "caption": "x", "start": 2, "end": 1}\n', "m.jsonl:1: 'end'"),
])
def test_bad_jsonl_line_names_its_number(tmp_path, text, message):
    (tmp_path / "m.jsonl").write_text(text)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        read_manifest(tmp_path / "m.jsonl")


def test_bad_csv_line_names_its_number(tmp_path):
    (tmp_path / "m.csv").write_text("video,caption,fps\na.mp4,x,8\nb.mp4,y,fast\n")
    with pytest.raises(ValueError, match=r"m\.csv:3: 'fps' must be a number, got 'fast'"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "n.csv").write_text("path,text\na.mp4,x\n")
    with pytest.raises(ValueError, match=r"n\.csv:1: header must name"):
        read_manifest(tmp_path / "n.csv")
    with pytest.raises(FileNotFoundError):
        read_manifest(tmp_path / "missing.jsonl")


def test_records_keep_every_field_and_collect_bad_lines(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text('{"video": "a.mp4", "caption": "x", "scene": {"motion": "still"}, "seed": 7}\n\n'
                 '{not json\n{"caption": "no video"}\n[1, 2]\n{"video": "b.mp4", "caption": "y"}\n')
    errors = []
    recs = read_records(m, errors)
    assert [(r["video"], r["_line"]) for r in recs] == [("a.mp4", 1), ("b.mp4", 6)]
    assert recs[0]["scene"] == {"motion": "still"} and recs[0]["seed"] == 7  # what read_manifest's Clips drop
    assert [e["line"] for e in errors] == [3, 4, 5]
    assert "m.jsonl:3: not valid JSON" in errors[0]["error"] and "'video'" in errors[1]["error"]
    assert "expected a JSON object, got list" in errors[2]["error"]
    with pytest.raises(ValueError, match=r"m\.jsonl:3: not valid JSON"):  # without a list: the first bad line
        read_records(m)
    (tmp_path / "e.jsonl").write_text("\n")
    assert read_records(tmp_path / "e.jsonl") == []
    with pytest.raises(ValueError, match="has no clips"):
        read_manifest(tmp_path / "e.jsonl")


# ----------------------------------------------------------------------------- buckets

def test_buckets_for_a_model():
    from tenku.config import preset
    from tenku.data.clips import spatial_stride

    cfg = preset("tiny")
    assert spatial_stride(cfg) == cfg.vae.spatial_compression * cfg.dit.patch_size[1] == 16
    b = BucketConfig.for_model(cfg)
    assert (b.sizes, b.frames, b.stride, b.fps) == ([(cfg.sample.height, cfg.sample.width)], [1, cfg.sample.frames], 16, None)
    b = BucketConfig.for_model(cfg, [(32, 48)], [5], fps=4)
    assert (b.sizes, b.frames, b.fps) == ([(32, 48)], [5], 4)
    with pytest.raises(ValueError, match="multiples of stride 16"):
        BucketConfig.for_model(cfg, [(24, 24)])


def clip(h, w, frames=17, **kw):
    return Clip(video=kw.pop("video", "/x.mp4"), caption="c", frames=frames, height=h, width=w, source_fps=8, **kw)


def test_buckets_keep_the_aspect_ratio():
    cfg = BucketConfig(sizes=[(64, 64), (48, 80), (80, 48), (32, 32)], frames=[1, 9, 17], stride=16)
    assert assign_bucket(clip(48, 80), cfg) == (17, 48, 80)  # landscape stays landscape
    assert assign_bucket(clip(80, 48), cfg) == (17, 80, 48)
    assert assign_bucket(clip(96, 160), cfg) == (17, 48, 80)  # downscaled freely, same aspect
    assert assign_bucket(clip(480, 480), cfg) == (17, 64, 64)  # largest of the square sizes
    assert assign_bucket(clip(56, 56), cfg) == (17, 64, 64)  # small upscale (1.14) allowed
    assert assign_bucket(clip(40, 40), cfg) == (17, 32, 32)  # 64/40 = 1.6 is too much upscaling
    assert assign_bucket(clip(20, 20), cfg) is None  # smaller than every bucket
    assert assign_bucket(clip(100, 300), cfg) is None  # 1:3 has no bucket: skipped, never squashed
    square_only = BucketConfig(sizes=[(64, 64)], frames=[17], stride=16)
    assert assign_bucket(clip(48, 80), square_only) is None  # a 40% crop is not "small"
    assert assign_bucket(clip(64, 68), square_only) == (17, 64, 64)  # a 6% crop is


def test_bucket_frames_are_the_largest_that_fit():
    assert assign_bucket(clip(64, 64, frames=20), CFG)[0] == 9
    assert assign_bucket(clip(64, 64, frames=8), CFG)[0] == 5
    assert assign_bucket(clip(64, 64, frames=4), CFG) is None  # too short for a video bucket: not a still
    assert assign_bucket(clip(64, 64, frames=1, video="/x.png"), CFG)[0] == 1
    assert assign_bucket(clip(64, 64, frames=1, video="/still.mp4"), CFG)[0] == 1  # a 1-frame video is a still
    # 20 frames at 8 fps resampled to 4 fps: 10 usable frames (every second one).
    assert assign_bucket(clip(64, 64, frames=20), BucketConfig(sizes=[(32, 32)], frames=[9, 17], fps=4))[0] == 9
    # start/end (seconds) cut the window: 1.0 .. 2.0 s at 8 fps = 8 frames.
    assert assign_bucket(clip(64, 64, frames=40, start=1.0, end=2.0), CFG)[0] == 5
    np.testing.assert_array_equal(frame_picks(10, 8, 4), [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(frame_picks(4, 8, 16), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(frame_picks(5, 24, 10), [0, 2, 4])


def test_bucket_config_validates():
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        BucketConfig(sizes=[(32, 32)], frames=[8])
    with pytest.raises(ValueError, match="multiples of stride 16"):
        BucketConfig(sizes=[(32, 40)], frames=[1])


# ----------------------------------------------------------------------------- decoding and skipping

def test_dataset_decodes_buckets_and_skips_bad_files(media, tmp_path, caplog):
    names = ["square.mp4", "wide.mp4", "tall.mp4", "big.mp4", "still.png", "short.mp4", "broken.mp4",
             "truncated.mp4", "missing.mp4"]
    m = write_jsonl(tmp_path / "m.jsonl", [{"video": str(media / n), "caption": n} for n in names])
    with caplog.at_level(logging.WARNING, logger="tenku.data.clips"):
        ds = VideoDataset(read_manifest(m), CFG)
    assert ds.buckets[:5] == [(9, 32, 32), (9, 32, 48), (9, 48, 32), (5, 32, 32), (1, 32, 32)]
    assert ds.buckets[5:] == [None] * 4
    skipped = dict(ds.skipped)
    assert set(skipped) == {str(media / n) for n in names[5:]}
    assert "too short" in skipped[str(media / "short.mp4")]
    assert "not found" in skipped[str(media / "missing.mp4")]
    for n in names[5:]:  # every skip is in the log with its path
        assert str(media / n) in caplog.text
    for i, (T, H, W) in enumerate(ds.buckets[:5]):
        item = ds[i]
        assert item["video"].shape == (3, T, H, W) and item["caption"] == names[i] and item["index"] == i
        assert item["video"].min() >= -1 and item["video"].max() <= 1
    assert ds[6] is None  # a skipped index yields None, never raises
    # The first frame of the downscaled 64x64 clip still shows the red square on black.
    big = ds[3]["video"][:, 0]  # (3, 32, 32)
    assert big[0].max() > 0.5 and big[1].max() < 0


def test_truncated_file_found_at_decode_is_skipped(media, tmp_path):
    # The manifest claims sizes (so nothing is probed) that the files cannot deliver.
    m = write_jsonl(tmp_path / "m.jsonl", [
        {"video": str(media / "wide.mp4"), "caption": "a", "frames": 40, "height": 32, "width": 48, "fps": 8},
        {"video": str(media / "truncated.mp4"), "caption": "b", "frames": 12, "height": 32, "width": 32, "fps": 8},
        {"video": str(media / "square.mp4"), "caption": "c", "frames": 12, "height": 32, "width": 32, "fps": 8},
    ])
    ds = VideoDataset(read_manifest(m), CFG)
    assert ds.buckets == [(9, 32, 48), (9, 32, 32), (9, 32, 32)]
    assert ds[0] is not None  # 10 frames really there: enough for 9
    ds.buckets[0] = (17, 32, 48)  # pretend the bucket wanted more than the file has
    assert ds[0] is None and "truncated" in ds.skipped[-1][1] and ds.skipped[-1][0] == str(media / "wide.mp4")
    assert ds[1] is None and ds.skipped[-1][0] == str(media / "truncated.mp4")
    assert ds[2]["video"].shape == (3, 9, 32, 32)
    batch = collate_videos([ds[1], ds[2], ds[2]])
    assert batch["video"].shape == (2, 3, 9, 32, 32) and batch["skipped"] == 1
    assert collate_videos([None, None]) is None


def test_resampling_picks_frames(tmp_path):
    write_video(tmp_path / "ramp.mp4", moving_square(12, 32, 32, brightness_by_frame=True), fps=8)
    m = write_jsonl(tmp_path / "m.jsonl", [{"video": "ramp.mp4", "caption": "x"}])
    ds = VideoDataset(read_manifest(m), BucketConfig(sizes=[(32, 32)], frames=[5], fps=4))
    video = ds[0]["video"]  # (3, 5, 32, 32): source frames 0, 2, 4, 6, 8
    grey = (video[1, :, -4:, -4:].mean(dim=(1, 2)) + 1) * 127.5  # the background's grey level per frame
    np.testing.assert_allclose(grey.numpy(), [0, 40, 80, 120, 160], atol=4)


def test_resize_crop_keeps_aspect_and_centres():
    video = torch.zeros(3, 1, 36, 32)
    video[:, :, 2:34] = 1.0  # the centre 32 rows are white: a centre crop to 32x32 keeps only them
    out = resize_crop(video, 32, 32)
    assert out.shape == (3, 1, 32, 32) and torch.all(out == 1.0)
    assert torch.equal(resize_crop(video[:, :, 2:34], 32, 32), video[:, :, 2:34])  # same size: untouched


def test_loader_batches_hold_one_bucket(media, tmp_path):
    names = ["square.mp4", "wide.mp4", "square.mp4", "wide.mp4", "still.png", "square.mp4", "broken.mp4"]
    m = write_jsonl(tmp_path / "m.jsonl", [{"video": str(media / n), "caption": n} for n in names])
    ds = VideoDataset(read_manifest(m), CFG)
    sampler = BucketBatchSampler(ds.buckets, batch_size=2, seed=0, drop_last=False)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate_videos)
    seen = []
    for batch in loader:
        shapes = {ds.buckets[i] for i in batch["index"].tolist()}
        assert len(shapes) == 1 and batch["video"].shape[2:] == next(iter(shapes))
        seen += batch["index"].tolist()
    assert sorted(seen) == [0, 1, 2, 3, 4, 5]  # the broken file never reaches a batch


def test_probe_false_skips_clips_without_sizes(media, tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"video": str(media / "square.mp4"), "caption": "x"}])
    ds = VideoDataset(read_manifest(m), CFG, probe=False)
    assert ds.buckets == [None] and "probe=False" in ds.skipped[0][1]
