import numpy as np
import pytest
import torch

from tenku.data.video_io import VideoReadError, VideoWriter, frames_to_tensor, read_video, tensor_to_frames, write_video


def clip(T=9, H=48, W=64):
    rng = np.random.default_rng(0)
    frames = np.zeros((T, H, W, 3), np.uint8)
    for i in range(T):
        frames[i, 8:24, 4 + 4 * i: 20 + 4 * i] = (230, 40, 40)  # a red square moving right
    return frames + rng.integers(0, 3, frames.shape, dtype=np.uint8)


def test_mp4_round_trip_frames_size_fps(tmp_path):
    frames = clip()
    path = write_video(tmp_path / "a.mp4", frames, fps=8)
    back, fps = read_video(path)
    assert back.shape == frames.shape and fps == 8
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 3  # near-lossless at crf 12


def test_the_same_frames_give_the_same_bytes(tmp_path):
    # A flat square on noise: with x264's default mbtree, 1-2 of 6 writes of these frames came out different.
    frames = np.random.default_rng(0).integers(0, 256, (17, 64, 64, 3), dtype=np.uint8)
    frames[:, 20:40, 20:40] = 200
    files = {write_video(tmp_path / f"{i}.mp4", frames).read_bytes() for i in range(6)}
    assert len(files) == 1


def test_yuv444_keeps_the_colour_of_one_pixel_wide_details(tmp_path):
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    frames[:, :, 9] = (230, 40, 40)  # a one-pixel red line on black: 4:2:0 shares its chroma with column 8
    err = {}
    for fmt in ("yuv420p", "yuv444p"):
        back, _ = read_video(write_video(tmp_path / f"{fmt}.mp4", frames, fps=8, pix_fmt=fmt))
        err[fmt] = np.abs(back[:, :, 8:10].astype(int) - frames[:, :, 8:10].astype(int)).mean()
    assert err["yuv444p"] < 3 < err["yuv420p"]
    with pytest.raises(ValueError, match="pix_fmt must be one of"):
        write_video(tmp_path / "x.mp4", frames, pix_fmt="rgb48")


def test_odd_sizes_are_padded_and_streaming_writer(tmp_path):
    frames = clip(5, 33, 47)
    with VideoWriter(tmp_path / "b.mp4", fps=4) as w:
        w.write(frames[:2])
        w.write(frames[2:])
    back, _ = read_video(tmp_path / "b.mp4")
    assert back.shape == (5, 34, 48, 3) and w.frames_written == 5


def test_png_and_time_range(tmp_path):
    frames = clip()
    write_video(tmp_path / "one.png", frames[:1])
    img, _ = read_video(tmp_path / "one.png")
    assert img.shape == (1, 48, 64, 3) and np.array_equal(img[0], frames[0])  # PNG is lossless
    with pytest.raises(ValueError, match="one frame"):
        write_video(tmp_path / "two.png", frames[:2])
    write_video(tmp_path / "c.mp4", frames, fps=8)
    part, _ = read_video(tmp_path / "c.mp4", start=0.25, end=0.75)
    assert len(part) == 4


def test_unreadable_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoReadError, match="bad.mp4"):
        read_video(bad)
    with pytest.raises(VideoReadError, match="not found"):
        read_video(tmp_path / "missing.mp4")
    good = write_video(tmp_path / "good.mp4", clip(), fps=8)
    data = good.read_bytes()
    (tmp_path / "trunc.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoReadError):
        read_video(tmp_path / "trunc.mp4")
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "f.mp4", clip().astype(np.float32))


def test_tensor_layout_round_trip():
    frames = clip(5, 16, 16)
    x = frames_to_tensor(frames)
    assert x.shape == (3, 5, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(tensor_to_frames(x), torch.from_numpy(frames))
