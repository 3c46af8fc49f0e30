"""One generation request, the same from the command line, the server, the web page and Python.

A `GenerateRequest` says what to make: the mode and its given media, the prompt (or a storyboard: a prompt
per time range), the size, the length and the sampling options; None leaves an option to the model
(config.json "sample"). `validate(model_config)` is the one check every caller runs: it resolves every
default, refuses bad input with a `RequestError` naming the option and the valid values, reads only the
headers of the given media (a huge or mismatched input costs nothing), and decides how the video is made:
one clip, or a sliding window over time (tenku/long_video.py) for text-to-video longer than one window
(the model's `max_frames`) or a storyboard.

Modes (given media are file paths or uint8 frames (T, H, W, 3); given frames are kept exactly):
  text                the prompt alone; `frames` is the length
  image               `image` is the first frame and/or `last_image` the last; `frames` is the whole length
  extend + direction  "forward": continue `video`; "backward": what came before it; `frames` new frames
                      (rounded up to the 4-frame latent grid)
  connect             a transition of `frames` new frames so that `video_a` flows into `video_b`
  loop                a clip, then a transition back into its first frame
  edit + strength     re-generate `video` (its first `frames`, by default its longest 1 + 4k prefix) from the
                      prompt; a low strength keeps layout and motion
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from tenku.budget import MAX_SIDE, MAX_VIDEO_FRAMES, check_budget, memory_budget
from tenku.conditioning import check_frame_size, load_frames, valid_prefix
from tenku.config import ModelConfig, SampleConfig
from tenku.data.clips import spatial_stride
from tenku.flow.sampler import SAMPLERS
from tenku.models.vae import nearest_valid
from tenku.data.video_io import peek_media

MODES = ("text", "image", "extend", "connect", "loop", "edit")
# The given media each mode reads, by field name (the server's upload fields carry the same names).
MODE_INPUTS = {"text": (), "image": ("image", "last_image"), "extend": ("video",),
               "connect": ("video_a", "video_b"), "loop": (), "edit": ("video",)}
INPUT_FIELDS = ("image", "last_image", "video", "video_a", "video_b")
DIRECTIONS = ("forward", "backward")
MAX_INPUT_FRAMES = 4097  # frames of a given video (extend, connect, edit)


class RequestError(ValueError):
    """Input a request cannot have: the message says what to change; `field` names the option or input."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def check_number(name: str, value, lo: float, hi: float, integer: bool = False, why: str = "") -> None:
    """RequestError unless `value` is a finite number (an integer if asked) in [lo, hi]: NaN, 0 for a count and
    negatives are refused with the range, never replaced by a default. `why` explains the upper limit."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and lo <= value <= hi
    if not ok or (integer and not float(value).is_integer()):
        raise RequestError(f"{name} must be {'an integer' if integer else 'a number'} in [{lo:g}, {hi:g}], got "
                           f"{value!r}{f' ({why})' if why else ''}", name)


def check_mode(mode) -> None:
    if mode not in MODES:
        raise RequestError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}", "mode")


def check_prompt(prompt) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise RequestError("prompt must be a non-empty string", "prompt")


def frames_for_seconds(seconds: float, fps: float) -> int:
    """The valid frame count (1 + 4k, at least 5: a duration asks for a video) closest to `seconds`."""
    check_number("fps", fps, 0.1, 240)
    check_number("seconds", seconds, 1e-3, MAX_VIDEO_FRAMES / fps, why=f"the longest video is {MAX_VIDEO_FRAMES} frames")
    return 1 + 4 * max(1, round((seconds * fps - 1) / 4))


def check_size(cfg: ModelConfig, frames: int, height: int, width: int, budget: int, given_frames: int = 0):
    """Latent grid (T', h, w) of one clip, or a RequestError ("size") naming the nearest valid values, the upper
    limit, or the memory the clip would need (an upper estimate, with `given_frames` input frames)."""
    pt, s = cfg.dit.patch_size[0], spatial_stride(cfg)
    errors = []
    for name, v, hi in (("frames", frames, MAX_VIDEO_FRAMES), ("height", height, MAX_SIDE), ("width", width, MAX_SIDE)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise RequestError(f"{name} must be an integer, got {v!r}", "size")
        if v > hi:
            errors.append(f"{name} must be at most {hi} (got {v})")
    if errors:
        raise RequestError("; ".join(errors), "size")
    if frames < 1 or (frames - 1) % 4 or ((frames - 1) // 4 + 1) % pt:
        ok = lambda n: (n - 1) % 4 == 0 and ((n - 1) // 4 + 1) % pt == 0  # noqa: E731
        errors.append(f"frames must be 1 + 4k (got {frames}; nearest valid: {nearest_valid(int(frames), ok, 1)})")
    for name, v in (("height", height), ("width", width)):
        if v < s or v % s:
            near = nearest_valid(int(v), lambda n: n % s == 0, s)
            errors.append(f"{name} must be a positive multiple of {s} (got {v}; nearest valid: {near})")
    if errors:
        raise RequestError("; ".join(errors), "size")
    try:
        check_budget(cfg, frames, height, width, budget, given_frames)
    except ValueError as e:
        raise RequestError(str(e), "size") from None
    c = cfg.vae.spatial_compression
    return (frames - 1) // 4 + 1, height // c, width // c


# ---- storyboards and windows: how a long video is laid out in time
@dataclass
class Shot:
    start: float  # seconds
    end: float
    prompt: str


_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:s)?\s*-\s*(\d+(?:\.\d+)?)\s*s?\s*:\s*(.+?)\s*$")


def parse_storyboard(text: str) -> list[Shot]:
    """'0-5s: a red ball rolls right; 5-10s: it falls' or a JSON list of {start, end, prompt}. A plain prompt
    is one shot covering everything. Ranges must be contiguous from 0. (The command line also reads a .json
    file; a server never opens a path it was sent.)"""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
            shots = [Shot(float(d["start"]), float(d["end"]), str(d["prompt"])) for d in items]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise RequestError(f"storyboard JSON must be a list of {{start, end, prompt}}: {e}", "prompt") from None
    elif _RANGE.match(stripped.split(";")[0]):
        shots = []
        for i, part in enumerate(p for p in stripped.split(";") if p.strip()):
            m = _RANGE.match(part)
            if not m:
                raise RequestError(f"storyboard part {i + 1} {part.strip()!r} is not 'START-ENDs: prompt'", "prompt")
            shots.append(Shot(float(m[1]), float(m[2]), m[3]))
    else:
        return [Shot(0.0, float("inf"), stripped)]
    t = 0.0
    for s in shots:
        if not s.prompt.strip():
            raise RequestError(f"storyboard shot {s.start}-{s.end}s has no prompt", "prompt")
        if abs(s.start - t) > 1e-6 or s.end <= s.start:
            raise RequestError(f"storyboard ranges must be contiguous from 0 s; got {s.start}-{s.end}s after {t}s",
                               "prompt")
        t = s.end
    if not shots:
        raise RequestError("storyboard JSON must be a list of {start, end, prompt}: the list is empty", "prompt")
    return shots


def prompt_at(shots: list[Shot], seconds: float) -> str:
    for s in shots:
        if s.start <= seconds < s.end:
            return s.prompt
    return shots[-1].prompt  # past the last range: keep the last prompt


def window_plan(total_frames: int, window: int, history: int) -> list[tuple[int, int]]:
    """(first new frame, number of new frames) per window; the first window has no history."""
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (window, history))
    if not ok or window < 1 or history < 1 or (window - 1) % 4 or (history - 1) % 4 or history >= window:
        raise RequestError(f"window ({window}) and history ({history}) must be 1 + 4k with history < window", "window")
    plan = [(0, min(window, total_frames))]
    while (done := plan[-1][0] + plan[-1][1]) < total_frames:
        plan.append((done, min(window - history, total_frames - done)))
    return plan


# ---- the request
@dataclass
class GenerateRequest:
    prompt: str  # what the video shows, or a storyboard ('0-5s: ...; 5-10s: ...' or a JSON list)
    mode: str = "text"  # one of MODES
    # Given media (MODE_INPUTS): file paths or uint8 frames (T, H, W, 3) / images (H, W, 3).
    image: object = None
    last_image: object = None
    video: object = None
    video_a: object = None
    video_b: object = None
    direction: str = "forward"  # extend
    strength: float = 0.6  # edit: 0 keeps the video, 1 ignores it
    # Length and size. frames: the length (extend, connect: the new frames; edit: the frames re-generated);
    # or seconds instead. height/width: the given media's size, else the model's.
    frames: int | None = None
    seconds: float | None = None
    height: int | None = None
    width: int | None = None
    # Sampling (None: the model's default).
    fps: float | None = None
    steps: int | None = None
    guidance: float | None = None
    sampler: str | None = None
    seed: int = 0
    # Long video: frames per window (None: the model's max_frames) and frames each window continues from.
    window: int | None = None
    history: int = 5

    @classmethod
    def from_inputs(cls, prompt: str, image=None, last_image=None, extend=None, connect=None, loop: bool = False,
                    edit=None, **options) -> "GenerateRequest":
        """The mode from the input given (the command line's flags, Pipeline.generate's keywords): image and/or
        last_image, extend (+ direction), connect=(a, b), loop=True or edit (+ strength); none is text."""
        given = [m for m, on in (("image", image is not None or last_image is not None), ("extend", extend is not None),
                                 ("connect", connect is not None), ("loop", bool(loop)), ("edit", edit is not None)) if on]
        if len(given) > 1:
            raise RequestError(f"choose one mode, got {' + '.join(given)}", "mode")
        if connect is not None and len(connect) != 2:
            raise RequestError("connect takes two videos (a, b)", "video_a")
        a, b = connect if connect is not None else (None, None)
        return cls(prompt, mode=given[0] if given else "text", image=image, last_image=last_image,
                   video=extend if extend is not None else edit, video_a=a, video_b=b, **options)

    def inputs(self) -> dict:
        """The given media, field -> path or frames."""
        return {name: getattr(self, name) for name in INPUT_FIELDS if getattr(self, name) is not None}

    def options(self) -> dict:
        """Every field but the mode and the given media (plain values once validated: what a server stores)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("mode", *INPUT_FIELDS)}

    def validate(self, cfg: ModelConfig, budget: int | None = None) -> "Checked":
        """This request with every option resolved and checked, and how it will be made; a RequestError (a
        ValueError) naming the option and its valid values otherwise. `budget`: bytes one clip may use (None:
        this machine's, tenku/budget.py)."""
        budget = memory_budget() if budget is None else budget
        # 1. What to make: the mode, its given media, the prompt or storyboard.
        check_mode(self.mode)
        self._check_inputs()
        check_prompt(self.prompt)
        shots = parse_storyboard(self.prompt)
        if len(shots) > 1 and self.mode != "text":
            raise RequestError(f"a storyboard needs mode 'text', got mode {self.mode!r}; give one prompt", "prompt")
        # 2. Sampling: the model's default for each None, every option checked (0 is a value like any other,
        # refused where it is out of range, never a request for the default).
        req = self._resolve_sampling(cfg.sample)
        # 3. Sizes from the given media's headers: the video takes their size unless asked otherwise, and all
        # must agree (given frames are pasted into it).
        sizes = {name: _peek(src, name) for name, src in req.inputs().items()}  # (frames or None, H, W)
        req = req._resolve_size(cfg.sample, sizes)
        # 4. Length: one clip, or a sliding window over time.
        req, windows = req._resolve_length(cfg.sample, shots, sizes)
        # 5. Sizes and memory of one clip (of one window), before anything is allocated.
        given = sum(n or MAX_INPUT_FRAMES for n, _, _ in sizes.values())
        if windows is not None:
            check_size(cfg, req.window, req.height, req.width, budget, req.history)
        elif req.mode in ("extend", "connect") or req.frames is None:  # the pipeline fits the length to the grid
            check_size(cfg, 1, req.height, req.width, budget, given)
        else:
            check_size(cfg, req.frames, req.height, req.width, budget, given)
        return Checked(req, tuple(shots), windows)

    def _check_inputs(self) -> None:
        wanted = MODE_INPUTS[self.mode]
        for name in self.inputs():
            if name not in wanted:
                raise RequestError(f"mode {self.mode!r} takes no input {name!r}", name)
        missing = [name for name in wanted if getattr(self, name) is None]
        if self.mode == "image" and len(missing) == 2:
            raise RequestError("mode 'image' needs an input 'image' and/or 'last_image'", "image")
        if self.mode != "image" and missing:
            raise RequestError(f"mode {self.mode!r} needs an input {missing[0]!r}", missing[0])

    def _resolve_sampling(self, d: SampleConfig) -> "GenerateRequest":
        fps = d.fps if self.fps is None else self.fps
        steps = d.steps if self.steps is None else self.steps
        guidance = d.guidance if self.guidance is None else self.guidance
        sampler = d.sampler if self.sampler is None else self.sampler
        check_number("fps", fps, 0.1, 240)
        check_number("steps", steps, 1, 1000, integer=True)
        check_number("guidance", guidance, 0, 100)
        if sampler not in SAMPLERS:
            raise RequestError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}", "sampler")
        check_number("seed", self.seed, -(2**63), 2**63 - 1, integer=True)
        if self.mode == "extend" and self.direction not in DIRECTIONS:
            raise RequestError(f"direction must be 'forward' or 'backward', got {self.direction!r}", "direction")
        if self.mode == "edit":
            s = self.strength
            if not (isinstance(s, (int, float)) and not isinstance(s, bool) and 0.0 < s <= 1.0):
                raise RequestError(f"strength must be in (0, 1], got {s}", "strength")
        return replace(self, fps=fps, steps=int(steps), guidance=guidance, sampler=sampler, seed=int(self.seed))

    def _resolve_size(self, d: SampleConfig, sizes: dict) -> "GenerateRequest":
        first = next(iter(sizes.values()), (None, d.height, d.width))
        height = first[1] if self.height is None else self.height
        width = first[2] if self.width is None else self.width
        for name, (_, h, w) in sizes.items():
            try:
                check_frame_size((h, w), height, width, "input video" if name == "video" else name)
            except ValueError as e:
                raise RequestError(str(e), name) from None
        return replace(self, height=height, width=width)

    def _resolve_length(self, d: SampleConfig, shots: list[Shot], sizes: dict):
        """(request with `frames` resolved, window plan or None). A long video's frames are its whole length
        (any count); a clip's are 1 + 4k (checked with its size)."""
        frames, seconds = self.frames, self.seconds
        if frames is not None and seconds is not None:
            raise RequestError("give frames or seconds, not both", "frames")
        if frames is not None and not (type(frames) is int and frames <= MAX_VIDEO_FRAMES):  # 0: refused as a size
            check_number("frames", frames, 1, MAX_VIDEO_FRAMES, integer=True, why="the longest video")
            frames = int(frames)
        if frames is None and seconds is None and math.isfinite(shots[-1].end):
            seconds = shots[-1].end  # a storyboard lasts until its last shot ends
        if seconds is not None:
            frames = frames_for_seconds(seconds, self.fps)
        window = d.max_frames if self.window is None else self.window
        if self.mode == "text" and (len(shots) > 1 or (d.frames if frames is None else frames) > window):
            total = max(1, round(seconds * self.fps)) if seconds is not None else (d.frames if frames is None else frames)
            plan = window_plan(total, window, self.history)
            return replace(self, frames=total, seconds=None, window=window), tuple(plan)
        if self.mode == "edit":
            n = sizes["video"][0]  # None when the header does not say
            if frames is None:
                frames = None if n is None else valid_prefix(n)
            elif n is not None and frames > n:
                raise RequestError(f"edit: frames ({frames}) is more than the video's {n} frames", "frames")
        elif self.mode in ("extend", "connect"):
            frames = d.frames - 1 if frames is None else frames
            if frames < 1:
                raise RequestError(f"ask for at least one new frame, got {frames}", "frames")
        elif frames is None:
            frames = d.frames
        return replace(self, frames=frames, seconds=None), None


@dataclass(frozen=True)
class Checked:
    """A validated request and how it is made."""

    request: GenerateRequest  # every option resolved; frames is a long video's whole length
    shots: tuple[Shot, ...]  # the storyboard; one shot for a plain prompt
    windows: tuple[tuple[int, int], ...] | None  # (first new frame, new frames) per window; None: one clip

    @property
    def one_frame(self) -> bool:
        """The result is one image (written as a .png)."""
        r = self.request
        return self.windows is None and r.mode in ("text", "image", "edit") and r.frames == 1


def _peek(src, name: str) -> tuple[int | None, int, int]:
    """(frames or None, height, width) of a file from its header, or of frames already in memory."""
    try:
        if isinstance(src, (str, Path)):
            return peek_media(src)
        f = load_frames(src, name)
    except ValueError as e:
        raise RequestError(f"{name}: {e}" if isinstance(src, (str, Path)) else str(e), name) from None
    return len(f), f.shape[1], f.shape[2]
