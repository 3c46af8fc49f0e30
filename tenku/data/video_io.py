"""Video and image files through PyAV: H.264 mp4 (yuv420p, plays in browsers), PNG, and reading mp4/webm/gif.

Frames are uint8 arrays (T, H, W, 3) in RGB. `VideoWriter` streams frames to the file so long videos never
sit in memory whole. Every write goes to a temporary file in the same folder that is renamed over the target
when complete: a killed process never leaves half a file in place of a good one. `image_size` reads an
image's size from its header, because FFmpeg decodes the whole image just to open it (a 746 KB PNG can
claim 16000x16000 pixels and cost 768 MB).
"""

from __future__ import annotations

import os
import struct
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
_UMASK = os.umask(0o022)  # read the process umask (the only way is to set it) and put it back
os.umask(_UMASK)


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


def check_writable(path: str | Path) -> Path:
    """Fail before any work if `path` cannot be written (a folder, a missing or read-only parent, /proc)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"output {path} is a directory; give a file name, e.g. {path / 'tenku.mp4'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise ValueError(f"cannot write output {path}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(probe)
    return path


def _temp_beside(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; the output gets the mode a plain open() would give
    os.close(fd)
    return Path(tmp)


def _commit(tmp: Path, path: Path) -> None:
    """fsync the finished temporary file, then rename it over `path` (atomic on one filesystem)."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


class VideoWriter:
    """Streams RGB frames into an H.264 mp4. Odd sizes are padded by one pixel (yuv420p needs even sizes).

    Frames go to a temporary file beside `path`, renamed to `path` by close(); leaving the `with` block by an
    exception deletes it, so `path` holds either its old content or the whole new video.

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
        self._tmp = None
        self.frames_written = 0

    def _open(self, height: int, width: int):
        self._tmp = _temp_beside(self.path)
        # faststart puts the index first, so browsers can start playing before the whole file arrives.
        self._container = av.open(str(self._tmp), "w", format="mp4", options={"movflags": "+faststart"})
        self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
        self._stream.height = height + height % 2
        self._stream.width = width + width % 2
        self._stream.pix_fmt = self.pix_fmt
        # Low CRF keeps the exact colours that WorldBench reads back. x264's macroblock-tree rate control made
        # the bytes of the same frames differ from one write to the next (even on one thread); without it the
        # same seed gives the same file.
        self._stream.options = {"crf": str(self.crf), "preset": "medium", "x264-params": "mbtree=0"}

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
            _commit(self._tmp, self.path)

    def abort(self) -> None:
        """Drop what was written; `path` keeps its old content."""
        if self._container is not None:
            try:
                self._container.close()
            except av.error.FFmpegError:
                pass
            self._container = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()


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
    tmp = _temp_beside(path)
    try:
        with av.open(str(tmp), "w", format="image2") as c:
            s = c.add_stream("png")
            s.height, s.width = image.shape[:2]
            s.pix_fmt = "rgb24"
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
            c.mux(s.encode())
        _commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) from a PNG, GIF, BMP, WebP or JPEG header without decoding; None for other files."""
    try:
        return _header_size(path)
    except (OSError, struct.error) as e:
        raise VideoReadError(f"{path}: cannot read the image header ({e})") from None


def _header_size(path) -> tuple[int, int] | None:
    with open(path, "rb") as f:
        head = f.read(32)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
            w, h = struct.unpack(">II", head[16:24])
        elif head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
            w, h = struct.unpack("<HH", head[6:10])
        elif head[:2] == b"BM" and len(head) >= 26:
            w, h = struct.unpack("<ii", head[18:26])
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
            w, h = _webp_size(head)
        elif head[:2] == b"\xff\xd8":
            f.seek(2)
            w, h = _jpeg_size(f)
        else:
            return None
    return abs(h), abs(w)  # a BMP stored top-down has a negative height


def _webp_size(head: bytes) -> tuple[int, int]:
    kind = head[12:16]
    if kind == b"VP8X":  # extended: 24-bit width - 1 and height - 1
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if kind == b"VP8L":  # lossless: 14-bit width - 1 and height - 1 after the signature byte
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    w, h = struct.unpack("<HH", head[26:30])  # lossy VP8 key frame
    return w & 0x3FFF, h & 0x3FFF


def _jpeg_size(f) -> tuple[int, int]:
    """Walk the JPEG segments to the first start-of-frame marker, which holds the size."""
    while True:
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return 0, 0  # no frame header: the decoder will refuse the file
        kind = marker[1]
        if kind in (0xD8, 0x01) or 0xD0 <= kind <= 0xD7 or kind == 0xFF:  # markers without a length
            f.seek(-1 if kind == 0xFF else 0, os.SEEK_CUR)
            continue
        length = struct.unpack(">H", f.read(2) or b"\0\0")[0]
        if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">xHH", f.read(5))
            return w, h
        f.seek(length - 2, os.SEEK_CUR)


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


def peek_media(path: str | Path) -> tuple[int | None, int, int]:
    """(frames or None if the container does not say, height, width) of a video or image, without decoding
    an image (its header) or any frame past what FFmpeg needs to open a video."""
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: file not found")
    size = image_size(path)
    if size is not None:  # an image; a GIF may be animated, and its header does not count frames
        with open(path, "rb") as f:
            gif = f.read(3) == b"GIF"
        return (None if gif else 1), size[0], size[1]
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            s = c.streams.video[0]
            return (s.frames or None), s.codec_context.height, s.codec_context.width
    except (av.error.FFmpegError, OSError, ValueError) as e:
        if isinstance(e, VideoReadError):
            raise
        raise VideoReadError(f"{path}: cannot decode ({e})") from None


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, H, W) float in [-1, 1], the VAE's input layout."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float()  # (T, H, W, 3)
    return x.permute(3, 0, 1, 2).div(127.5).sub(1.0)  # (3, T, H, W)


def tensor_to_frames(video: torch.Tensor) -> torch.Tensor:
    """(3, T, H, W) float in [-1, 1] -> (T, H, W, 3) uint8."""
    x = video.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)  # (3, T, H, W)
    return x.permute(1, 2, 3, 0).contiguous()  # (T, H, W, 3)
