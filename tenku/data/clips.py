"""Training clips: manifests (JSONL or CSV), decoding through PyAV, bucket assignment, a Dataset and collate.

A manifest line names a video (or an image: a one-frame clip), its caption and optionally `fps`, `start`,
`end` and the stored `frames`, `height`, `width` (docs/manifest.md). `VideoDataset` gives every clip one
bucket (frames, height, width) once, up front; `tenku.data.buckets.BucketBatchSampler` then draws batches that
hold one bucket shape each. Files that cannot be used (missing, not a video, truncated, too short, too small)
are skipped, logged with their path and reason (logger "tenku.data.clips") and counted in `VideoDataset.skipped`;
they never stop a run.

Bucket rule (`assign_bucket`), in three steps:
  1. Frames. The clip's usable frames are those in [start, end) of the file, resampled to the target rate by
     picking frames: output frame j is source frame floor(j * source_fps / target_fps) (picking repeats
     frames when the target rate is above the file's). Target rate: `BucketConfig.fps` if set, else the
     manifest's `fps`, else the file's own. The frame bucket is the largest `cfg.frames` entry <= the
     usable count; the clip's first frames are used (start-aligned, so captions about how a scene starts
     stay true). An image goes to the 1-frame bucket; a video goes to a video bucket (> 1 frame) and is
     skipped as too short if it has fewer frames than the shortest one (it falls back to 1 frame only when
     `cfg.frames` has no video bucket at all).
  2. Size. A size (h, w) fits the clip (H, W) when (a) resizing the clip, aspect ratio kept, just enough to
     cover (h, w) needs a scale <= `cfg.max_upscale` (downscaling is free), and (b) the centre crop that
     then trims the other side removes at most `cfg.max_crop` of it. A clip is never squashed: it is
     scaled by one factor, then centre-cropped.
  3. Among the sizes that fit, keep those whose aspect ratio is closest to the clip's (log-ratio distance),
     then take the one with the most pixels. Frames and size are chosen independently, so this is the
     bucket with the most pixels * frames among the closest-aspect buckets that fit.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from tenku.data.buckets import bucket_counts
from tenku.config import ModelConfig
from tenku.data.video_io import IMAGE_SUFFIXES, VideoReadError, frames_to_tensor, read_video

log = logging.getLogger("tenku.data.clips")


# ----------------------------------------------------------------------------- manifest

@dataclass
class Clip:
    """One manifest line. `video` is absolute (resolved against the manifest's folder)."""

    video: str
    caption: str
    fps: float | None = None  # rate to sample at (default: the file's own)
    start: float | None = None  # seconds
    end: float | None = None  # seconds
    frames: int | None = None  # the file's size as stored (manifest or probe)
    height: int | None = None
    width: int | None = None
    line: int = 0  # 1-based manifest line, for messages
    id: str | None = None
    source_fps: float | None = None  # the file's own rate, filled by `probe_clip` (None: assume `fps`)

    @property
    def is_image(self) -> bool:
        """An image file, or a video file holding a single frame (Tenku World writes stills as 1-frame mp4s)."""
        return Path(self.video).suffix.lower() in IMAGE_SUFFIXES or self.frames == 1


_FLOATS = ("fps", "start", "end")
_INTS = ("frames", "height", "width")


def _clip_from_record(rec: dict, base: Path, where: str, line: int) -> Clip:
    """Validate one manifest record (a dict of raw values) into a Clip; ValueError names `where`."""
    video, caption = rec["video"], rec["caption"]  # checked by _record
    kw = {}
    for name in _FLOATS + _INTS:
        v = rec.get(name)
        if v is None or v == "":
            continue
        try:
            if isinstance(v, bool):
                raise ValueError
            num = float(v)
            if name in _INTS:
                if not num.is_integer():
                    raise ValueError
                num = int(num)
        except (TypeError, ValueError):
            kind = "an integer" if name in _INTS else "a number"
            raise ValueError(f"{where}: '{name}' must be {kind}, got {v!r}") from None
        if not math.isfinite(num) or (num <= 0 if name != "start" else num < 0):
            raise ValueError(f"{where}: '{name}' must be {'>= 0' if name == 'start' else '> 0'}, got {v!r}")
        kw[name] = num
    if "end" in kw and kw["end"] <= kw.get("start", 0.0):
        raise ValueError(f"{where}: 'end' ({kw['end']}) must be after 'start' ({kw.get('start', 0.0)})")
    path = Path(video)
    path = path if path.is_absolute() else base / path
    cid = rec.get("id")
    return Clip(video=str(path.resolve()), caption=caption, line=line, id=None if cid in (None, "") else str(cid), **kw)


def _read_utf8(path: Path) -> str:
    """The file as text, or a ValueError naming it and the line of the first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                         "save the manifest as UTF-8") from None


def read_records(path: str | Path, errors: list[dict] | None = None) -> list[dict]:
    """The lines of a .jsonl (one JSON object per line) or .csv/.tsv (header row) manifest as raw dicts, each with
    its 1-based line number under "_line" and every field it has (e.g. Tenku World's `scene`, `seed`).

    Blank lines are skipped. A line that is not a JSON object, or lacks a `video` path or a `caption` string,
    raises ValueError naming `path:line`; with an `errors` list it is appended there as {"line", "error"}
    instead and the other lines are still read (WorldBench scores what it can). Raises FileNotFoundError for a
    missing manifest, ValueError for an unknown suffix or text that is not UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} not found")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv", ".tsv"):
        raise ValueError(f"manifest {path}: unknown format {suffix!r}; use .jsonl or .csv")
    content = _read_utf8(path)
    if suffix in (".jsonl", ".json"):
        lines = enumerate(content.split("\n"), start=1)  # not splitlines: JSON may hold U+2028
        rows = ((n, text) for n, text in lines if text.strip())
    else:
        reader = csv.DictReader(io.StringIO(content, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
        missing = {"video", "caption"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}:1: header must name the columns video and caption, missing {sorted(missing)}")
        rows = ((reader.line_num, row) for row in reader if None in row or any((v or "").strip() for v in row.values()))
    records = []
    for n, row in rows:
        try:
            records.append({**_record(row), "_line": n})
        except ValueError as e:
            if errors is None:
                raise ValueError(f"{path}:{n}: {e}") from None
            errors.append({"line": n, "error": f"{path}:{n}: {e}"})
    return records


def _record(row: str | dict) -> dict:
    """One manifest line (JSON text, or a CSV row as a dict) as a dict with a `video` path and a `caption`."""
    if isinstance(row, str):
        try:
            row = json.loads(row)
        except json.JSONDecodeError as e:
            raise ValueError(f"not valid JSON ({e.msg})") from None
    elif None in row:
        raise ValueError("more cells than header columns")
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    video, caption = row.get("video"), row.get("caption")
    if not isinstance(video, str) or not video.strip():
        raise ValueError(f"'video' must be a non-empty path string, got {video!r}")
    if not isinstance(caption, str):
        raise ValueError(f"'caption' must be a string, got {caption!r}")
    return row


def read_manifest(path: str | Path) -> list[Clip]:
    """The clips of a manifest (`read_records`), validated: numbers are numbers (`fps`, `start`, `end` > 0 or
    >= 0; `frames`, `height`, `width` integers) and relative video paths are resolved against the manifest's
    folder; unknown fields are ignored. Raises FileNotFoundError for a missing manifest and ValueError naming
    `path:line` for a malformed line, or for a manifest without clips.
    """
    base = Path(path).parent.resolve()
    clips = [_clip_from_record(rec, base, f"{path}:{rec['_line']}", rec["_line"]) for rec in read_records(path)]
    if not clips:
        raise ValueError(f"manifest {path} has no clips")
    return clips


# ----------------------------------------------------------------------------- buckets

def spatial_stride(cfg: ModelConfig) -> int:
    """Pixels per token side: VAE compression x DiT patch (e.g. 8 x 2 = 16). Bucket sides and generated
    heights and widths are multiples of it."""
    return cfg.vae.spatial_compression * cfg.dit.patch_size[1]


@dataclass
class BucketConfig:
    """Bucket shapes: every (frames, height, width) in frames x sizes. See the module docstring for the rule."""

    sizes: list[tuple[int, int]] = field(default_factory=lambda: [(64, 64)])  # (height, width)
    frames: list[int] = field(default_factory=lambda: [1, 17])  # 1 + 4k each (1 = images)
    stride: int = 16  # spatial multiple: VAE compression x DiT patch size
    fps: float | None = None  # resample every clip to this rate (None: the manifest's fps or the file's own)
    max_upscale: float = 1.25  # largest resize factor above 1 (small clips are not blown up more than this)
    max_crop: float = 0.125  # largest fraction of a side the centre crop may remove (aspect mismatch)

    def __post_init__(self):
        self.sizes = [tuple(int(v) for v in s) for s in self.sizes]
        self.frames = sorted({int(f) for f in self.frames})
        if not self.sizes or not self.frames:
            raise ValueError("BucketConfig needs at least one size and one frame count")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        for s in self.sizes:
            if len(s) != 2 or min(s) < self.stride or s[0] % self.stride or s[1] % self.stride:
                raise ValueError(f"bucket size {s} must be (height, width), both positive multiples of stride {self.stride}")
        for f in self.frames:
            if f < 1 or (f - 1) % 4:
                raise ValueError(f"bucket frame count {f} must be 1 + 4k (1, 5, 9, 13, 17, ...)")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be > 0 or None, got {self.fps}")
        if self.max_upscale < 1.0:
            raise ValueError(f"max_upscale must be >= 1, got {self.max_upscale}")
        if not 0.0 <= self.max_crop < 1.0:
            raise ValueError(f"max_crop must be in [0, 1), got {self.max_crop}")

    @classmethod
    def for_model(cls, cfg: ModelConfig, sizes: list[tuple[int, int]] | None = None, frames: list[int] | None = None,
                  fps: float | None = None) -> BucketConfig:
        """The buckets of a model's training data: its stride (`spatial_stride`); by default its sample size
        and frame counts 1 (images) and its sample frames."""
        s = cfg.sample
        return cls(sizes=sizes or [(s.height, s.width)], frames=frames or [1, s.frames], fps=fps,
                   stride=spatial_stride(cfg))


def _source_fps(clip: Clip) -> float | None:
    return clip.source_fps or clip.fps


def target_fps(clip: Clip, cfg: BucketConfig) -> float | None:
    """The rate the clip is sampled at: cfg.fps, else the manifest's fps, else the file's own (None: unknown)."""
    return cfg.fps or clip.fps or _source_fps(clip)


def _window_frames(clip: Clip) -> int:
    """Source frames inside [start, end)."""
    n = clip.frames or 0
    if clip.start is None and clip.end is None:
        return n
    fps = _source_fps(clip)
    if fps is None:
        raise ValueError(f"{clip.video}: start/end need the file's fps; probe the clip first")
    first = math.ceil((clip.start or 0.0) * fps - 1e-6)
    last = n if clip.end is None else min(n, math.ceil(clip.end * fps - 1e-6))
    return max(0, last - max(0, first))


def frame_picks(n_source: int, source_fps: float | None, fps: float | None) -> np.ndarray:
    """Source indices of every output frame when `n_source` frames at `source_fps` are resampled to `fps`."""
    if n_source < 1:
        return np.zeros(0, dtype=np.int64)
    if not source_fps or not fps or abs(source_fps - fps) < 1e-6:
        return np.arange(n_source)
    step = source_fps / fps
    count = math.ceil(n_source / step - 1e-6)  # every j with floor(j * step) <= n_source - 1
    return np.floor(np.arange(count) * step + 1e-6).astype(np.int64)


def usable_frames(clip: Clip, cfg: BucketConfig) -> int:
    """Frames the clip yields after the [start, end) window and resampling to `target_fps`."""
    if clip.is_image:
        return 1
    return len(frame_picks(_window_frames(clip), _source_fps(clip), target_fps(clip, cfg)))


def _fit(height: int, width: int, size: tuple[int, int], cfg: BucketConfig) -> tuple[float, float] | None:
    """(scale, crop fraction) to bring (height, width) to `size`, or None if it breaks a limit."""
    h, w = size
    scale = max(h / height, w / width)  # cover the bucket with one factor: aspect ratio kept
    if scale > cfg.max_upscale + 1e-9:
        return None
    clip_aspect, bucket_aspect = width / height, w / h
    crop = 1.0 - min(clip_aspect, bucket_aspect) / max(clip_aspect, bucket_aspect)
    if crop > cfg.max_crop + 1e-9:
        return None
    return scale, crop


def explain_bucket(clip: Clip, cfg: BucketConfig) -> tuple[tuple[int, int, int] | None, str]:
    """(bucket, "") or (None, reason): `assign_bucket` with the reason a clip gets no bucket."""
    if clip.frames is None or clip.height is None or clip.width is None:
        raise ValueError(f"{clip.video}: frames/height/width unknown; probe the clip first (probe_clip)")
    # 1. Frames.
    n = usable_frames(clip, cfg)
    options = [f for f in cfg.frames if f <= n]
    if not clip.is_image and any(f > 1 for f in cfg.frames):
        options = [f for f in options if f > 1]  # a video is not silently turned into a still
    if not options:
        need = min((f for f in cfg.frames if f > 1 or clip.is_image), default=cfg.frames[0])
        return None, f"too short: {n} usable frames at {target_fps(clip, cfg) or 'native'} fps, the shortest bucket needs {need}"
    frames = max(options)
    # 2. Sizes that fit, 3. closest aspect ratio, then most pixels.
    fitting = [s for s in cfg.sizes if _fit(clip.height, clip.width, s, cfg) is not None]
    if not fitting:
        return None, (f"no bucket size fits {clip.height}x{clip.width} (sizes {cfg.sizes}, max_upscale "
                      f"{cfg.max_upscale}, max_crop {cfg.max_crop})")
    log_aspect = math.log(clip.width / clip.height)
    dist = {s: abs(math.log(s[1] / s[0]) - log_aspect) for s in fitting}
    best = min(dist.values())
    h, w = max((s for s in fitting if dist[s] <= best + 1e-9), key=lambda s: s[0] * s[1])
    return (frames, h, w), ""


def assign_bucket(clip: Clip, cfg: BucketConfig) -> tuple[int, int, int] | None:
    """(frames, height, width) for a probed clip, or None if none fits (rule: module docstring)."""
    return explain_bucket(clip, cfg)[0]


# ----------------------------------------------------------------------------- decoding

def probe_clip(clip: Clip) -> Clip:
    """Fill frames/height/width/source_fps from the file's metadata (no decoding). Raises VideoReadError."""
    path = Path(clip.video)
    if not path.is_file():
        raise VideoReadError(f"{path}: file not found")
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            s = c.streams.video[0]
            height, width = s.codec_context.height, s.codec_context.width
            if clip.is_image:
                frames, fps = 1, None
            else:
                frames = s.frames
                fps = float(s.average_rate or s.guessed_rate or 0) or None
                if not frames:  # some containers (gif, webm) do not store a count: count packets instead
                    frames = sum(1 for p in c.demux(s) if p.size)
    except VideoReadError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoReadError(f"{path}: cannot open ({e})") from None
    if not frames or not height or not width:
        raise VideoReadError(f"{path}: no frames or size in the metadata")
    clip.frames, clip.height, clip.width = int(frames), int(height), int(width)
    clip.source_fps = clip.source_fps or fps
    return clip


def _needs_probe(clip: Clip, cfg: BucketConfig) -> bool:
    if clip.frames is None or clip.height is None or clip.width is None:
        return True
    # Resampling or a time window needs the file's own rate; a manifest fps is taken to be that rate.
    return not clip.is_image and _source_fps(clip) is None and (cfg.fps is not None or clip.start or clip.end)


def resize_crop(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(3, T, H, W) -> (3, T, height, width): one scale factor that covers the target, then a centre crop."""
    _, _, H, W = video.shape
    scale = max(height / H, width / W)
    rh, rw = max(height, round(H * scale)), max(width, round(W * scale))
    x = video.permute(1, 0, 2, 3)  # (T, 3, H, W): frames as the batch
    if (rh, rw) != (H, W):
        # antialias keeps downscaled frames free of aliasing (thin edges of the world's objects)
        x = F.interpolate(x, size=(rh, rw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (rh - height) // 2, (rw - width) // 2
    x = x[:, :, top : top + height, left : left + width]  # (T, 3, height, width)
    return x.permute(1, 0, 2, 3).clamp(-1, 1).contiguous()  # (3, T, height, width)


class VideoDataset(torch.utils.data.Dataset):
    """Clips decoded into bucket-shaped tensors.

    `buckets[i]` is clip i's (frames, height, width) or None when it is skipped; `skipped` lists
    (path, reason) for every skip seen in this process (at probe time, and when a file turns out to be
    truncated or unreadable in `__getitem__`). `probe=True` reads frame counts, sizes and frame rates from the
    files' metadata when the manifest lacks them (filling the Clip objects in place; probe=False skips those
    clips instead). When the manifest gives frames/height/width, its `fps` is taken as the file's own rate.
    Items are deterministic (no random crops), so DataLoader workers need no seeding.
    Use with `tenku.data.buckets.BucketBatchSampler(dataset.buckets, ...)` and `collate_videos`.
    """

    def __init__(self, clips: list[Clip], cfg: BucketConfig, probe: bool = True):
        self.clips = list(clips)
        self.cfg = cfg
        self.buckets: list[tuple[int, int, int] | None] = []
        self.skipped: list[tuple[str, str]] = []
        self._failed: set[int] = set()
        for clip in self.clips:
            bucket, reason = None, ""
            try:
                if _needs_probe(clip, cfg):
                    if not probe:
                        raise VideoReadError(f"{clip.video}: frames/height/width missing from the manifest (probe=False)")
                    probe_clip(clip)
                bucket, reason = explain_bucket(clip, cfg)
            except VideoReadError as e:
                reason = str(e).removeprefix(f"{clip.video}: ")
            if bucket is None:
                self._skip(clip, reason)
            self.buckets.append(bucket)

    def _skip(self, clip: Clip, reason: str) -> None:
        self.skipped.append((clip.video, reason))
        log.warning("skipping %s (manifest line %d): %s", clip.video, clip.line, reason)

    def __len__(self) -> int:
        return len(self.clips)

    def bucket_counts(self) -> dict[tuple[int, int, int], int]:
        """Clips per bucket (skipped clips not counted)."""
        return bucket_counts(self.buckets)

    def load(self, i: int) -> torch.Tensor:
        """Clip i as (3, T, H, W) in [-1, 1] at its bucket shape. Raises VideoReadError (not logged)."""
        clip, bucket = self.clips[i], self.buckets[i]
        if bucket is None:
            raise VideoReadError(f"{clip.video}: skipped (no bucket)")
        frames, height, width = bucket
        fps = target_fps(clip, self.cfg)
        src = _source_fps(clip)
        # decode only as far as the last picked frame (a margin of one frame absorbs timestamp rounding)
        need = frames if not (src and fps) else math.floor((frames - 1) * src / fps + 1e-6) + 2
        data, file_fps = read_video(clip.video, clip.start, clip.end, max_frames=need)  # (n, H, W, 3)
        picks = np.arange(1) if clip.is_image else frame_picks(len(data), file_fps, fps or file_fps)
        if len(picks) < frames:
            raise VideoReadError(f"{clip.video}: truncated: decoded {len(data)} frames, the bucket needs {frames}"
                                 f" at {fps or file_fps:g} fps")
        video = frames_to_tensor(data[picks[:frames]])  # (3, T, H, W)
        return resize_crop(video, height, width)

    def __getitem__(self, i: int) -> dict | None:
        """{"video": (3, T, H, W) float in [-1, 1], "caption": str, "index": i}, or None if unreadable."""
        if self.buckets[i] is None or i in self._failed:
            return None
        try:
            video = self.load(i)
        except VideoReadError as e:
            self._failed.add(i)
            self._skip(self.clips[i], str(e).removeprefix(f"{self.clips[i].video}: "))
            return None
        return {"video": video, "caption": self.clips[i].caption, "index": i}


def collate_videos(items: list[dict | None]) -> dict | None:
    """Stack one bucket's items: {"video": (B, 3, T, H, W), "caption": [str], "index": (B,), "skipped": int}.

    None items (unreadable files) are dropped and counted in "skipped"; returns None if nothing is left.
    """
    kept = [it for it in items if it is not None]
    if not kept:
        return None
    shapes = {tuple(it["video"].shape) for it in kept}
    if len(shapes) > 1:
        raise ValueError(f"a batch must hold one bucket shape, got {sorted(shapes)}; use BucketBatchSampler")
    return {
        "video": torch.stack([it["video"] for it in kept]),  # (B, 3, T, H, W)
        "caption": [it["caption"] for it in kept],
        "index": torch.tensor([it["index"] for it in kept], dtype=torch.long),  # (B,)
        "skipped": len(items) - len(kept),
    }
