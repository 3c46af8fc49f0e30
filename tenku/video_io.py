"""Video and image files through PyAV: H.264 mp4 (yuv420p, plays in browsers), PNG, and reading mp4/webm/gif.

Frames are uint8 arrays (T, H, W, 3) in RGB. `VideoWriter` streams frames to the file so long videos never
sit in memory whole.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


class VideoReadError(ValueError):
    """A file that is missing, not a video/image, or has no decodable frames."""


def _to_numpy(frames) -> np.ndarray:
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")
    return frames


PIX_FMTS = ("yuv420p", "yuv444p")


class VideoWriter:
    """Streams RGB frames into an H.264 mp4. Odd sizes are padded by one pixel (yuv420p needs even sizes).

    pix_fmt "yuv420p" (default) plays everywhere; "yuv444p" keeps full-resolution colour (no chroma bleeding
    at the edges of small objects) for data sets, at the cost of browser playback."""

    def __init__(self, path: str | Path, fps: float, crf: int = 12, pix_fmt: str = "yuv420p"):
        if pix_fmt not in PIX_FMTS:
            raise ValueError(f"pix_fmt must be one of {PIX_FMTS}, got {pix_fmt!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self.crf = crf
        self.pix_fmt = pix_fmt
        self._container = None
        self._stream = None
        self.frames_written = 0

    def _open(self, height: int, width: int):
        # faststart puts the index first, so browsers can start playing before the whole file arrives.
        self._container = av.open(str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
        self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
        self._stream.height = height + height % 2
        self._stream.width = width + width % 2
        self._stream.pix_fmt = self.pix_fmt
        # Low CRF keeps the exact colours that WorldBench reads back.
        self._stream.options = {"crf": str(self.crf), "preset": "medium"}

    def write(self, frames) -> None:
        frames = _to_numpy(frames)  # (T, H, W, 3)
        if self._container is None:
            self._open(frames.shape[1], frames.shape[2])
        pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
        if pad_h or pad_w:
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        for frame in frames:
            self._container.mux(self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            self.frames_written += 1

    def close(self) -> None:
        if self._container is not None:
            self._container.mux(self._stream.encode())
            self._container.close()
            self._container = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_video(path: str | Path, frames, fps: float = 8, crf: int = 12, pix_fmt: str = "yuv420p") -> Path:
    """Write (T, H, W, 3) uint8 frames as mp4, or as PNG when the path ends in .png (one frame)."""
    path = Path(path)
    frames = _to_numpy(frames)
    if path.suffix.lower() == ".png":
        if frames.shape[0] != 1:
            raise ValueError(f"a PNG holds one frame, got {frames.shape[0]}; use an .mp4 path")
        write_image(path, frames[0])
        return path
    with VideoWriter(path, fps, crf, pix_fmt) as w:
        w.write(frames)
    return path


def write_image(path: str | Path, image) -> Path:
    """Write one (H, W, 3) uint8 image as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = _to_numpy(image)[0]
    with av.open(str(path), "w", format="image2") as c:
        s = c.add_stream("png")
        s.height, s.width = image.shape[:2]
        s.pix_fmt = "rgb24"
        c.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        c.mux(s.encode())
    return path


def read_video(path: str | Path, start: float | None = None, end: float | None = None,
               max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a video or image file into ((T, H, W, 3) uint8, fps). `start`/`end` in seconds."""
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: file not found")
    frames = []
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            stream = c.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 1) if path.suffix.lower() not in IMAGE_SUFFIXES else 1.0
            for frame in c.decode(stream):
                ts = float(frame.time) if frame.time is not None else len(frames) / fps
                if start is not None and ts < start - 1e-6:
                    continue
                if end is not None and ts >= end - 1e-6:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except VideoReadError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoReadError(f"{path}: cannot decode ({e})") from None
    if not frames:
        raise VideoReadError(f"{path}: no decodable frames")
    return np.stack(frames), fps


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, H, W) float in [-1, 1], the VAE's input layout."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float()  # (T, H, W, 3)
    return x.permute(3, 0, 1, 2).div(127.5).sub(1.0)  # (3, T, H, W)


def tensor_to_frames(video: torch.Tensor) -> torch.Tensor:
    """(3, T, H, W) float in [-1, 1] -> (T, H, W, 3) uint8."""
    x = video.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)  # (3, T, H, W)
    return x.permute(1, 2, 3, 0).contiguous()  # (T, H, W, 3)
