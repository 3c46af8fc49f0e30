"""What the server accepts: limits on requests and the checks that turn a form into generate() arguments.

Every refusal is an `InputError` carrying the HTTP status and the name of the limit or field that was
broken, so a client (and the web page) can say exactly what to change. Nothing here touches the queue.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass

MODES = ("text", "image", "extend", "connect", "loop", "edit")
# Keyword arguments of pipe.generate that each mode needs (docs/api.md, tenku/pipeline.py).
MODE_KWARGS = {
    "text": (),
    "image": ("image", "last_image"),
    "extend": ("extend", "direction"),
    "connect": ("connect",),
    "loop": ("loop",),
    "edit": ("edit", "strength"),
}
# Upload fields each mode reads; (name, required).
MODE_UPLOADS = {
    "text": (),
    "loop": (),
    "image": (("image", False), ("last_image", False)),
    "extend": (("video", True),),
    "connect": (("video_a", True), ("video_b", True)),
    "edit": (("video", True),),
}
UPLOAD_FIELDS = ("image", "last_image", "video", "video_a", "video_b")
# Client file types we store; the suffix is ours (chosen from this table), never the client's file name.
UPLOAD_TYPES = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/bmp": ".bmp",
    "video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov", "video/x-matroska": ".mkv",
    "image/gif": ".gif",
}
SUFFIX_TYPES = {s: t for t, s in UPLOAD_TYPES.items()} | {".jpeg": "image/jpeg"}


class InputError(Exception):
    """A request the server refuses: `status` is the HTTP code, `limit` names the limit or field."""

    def __init__(self, message: str, limit: str, status: int = 422):
        super().__init__(message)
        self.message, self.limit, self.status = message, limit, status


@dataclass
class Limits:
    max_prompt_chars: int = 2000
    max_frames: int = 129  # generated frames per job
    max_height: int = 1024
    max_width: int = 1024
    max_steps: int = 200
    max_guidance: float = 30.0
    max_fps: float = 60.0
    max_queue: int = 1000  # queued + running jobs
    max_upload_bytes: int = 64 * 1024 * 1024  # per file
    max_input_frames: int = 257  # frames in an uploaded video

    def to_dict(self) -> dict:
        return asdict(self)


def sample_defaults(pipe) -> dict:
    """The model's generation defaults (config.json "sample"), for forms and unset fields."""
    d = pipe.cfg.sample
    return dict(frames=d.frames, height=d.height, width=d.width, fps=d.fps, steps=d.steps,
                guidance=d.guidance, sampler=d.sampler, max_frames=getattr(d, "max_frames", d.frames))


def supported_modes(pipe) -> list[str]:
    """Modes the pipeline declares (`pipe.modes`, default text only) and whose keywords generate() accepts."""
    declared = set(getattr(pipe, "modes", {"text"}))
    params = inspect.signature(pipe.generate).parameters
    any_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return [m for m in MODES if m in declared and (any_kw or all(k in params for k in MODE_KWARGS[m]))]


def stride(pipe) -> int:
    return int(getattr(pipe, "spatial_stride", 16))


def frames_for_seconds(pipe, seconds: float, fps: float) -> int:
    if hasattr(pipe, "frames_for_seconds"):
        return pipe.frames_for_seconds(seconds, fps)
    return 1 + 4 * max(0, round((seconds * fps - 1) / 4))


def _range(name: str, value, lo, hi, limit: str | None = None):
    if value is not None and not lo <= value <= hi:
        raise InputError(f"{name} must be between {lo} and {hi}, got {value}", limit or name)


def check_mode_and_prompt(pipe, limits: Limits, form: dict) -> str:
    """The mode (supported by this pipeline) and the prompt (non-empty, within the limit); returns the mode."""
    mode = form.get("mode") or "text"
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}", "mode")
    if mode not in supported_modes(pipe):
        raise InputError(f"mode {mode!r} is not supported by this model/pipeline yet", "mode")
    prompt = form.get("prompt") or ""
    if not prompt.strip():
        raise InputError("prompt must be a non-empty string", "prompt")
    if len(prompt) > limits.max_prompt_chars:
        raise InputError(f"prompt is {len(prompt)} characters; the limit is {limits.max_prompt_chars}",
                         "max_prompt_chars")
    return mode


def check_params(pipe, limits: Limits, form: dict, inputs: dict) -> dict:
    """Validate a job form against the limits and the model; returns the stored job parameters.

    `form` holds the client's fields (None = unset); `inputs` maps upload field -> (T, H, W) of its decoded
    frames. Sizes are checked with pipe.check_size, whose ValueError (naming the nearest valid values) is
    passed through as a 422.
    """
    mode = check_mode_and_prompt(pipe, limits, form)
    prompt = form["prompt"]
    for name, required in MODE_UPLOADS[mode]:
        if required and name not in inputs:
            raise InputError(f"mode {mode!r} needs an upload in field {name!r}", name)
    if mode == "image" and not inputs:
        raise InputError("mode 'image' needs an upload in field 'image' and/or 'last_image'", "image")
    extra = sorted(set(inputs) - {n for n, _ in MODE_UPLOADS[mode]})
    if extra:
        raise InputError(f"mode {mode!r} takes no upload {extra[0]!r}", extra[0])

    d = sample_defaults(pipe)
    fps = form.get("fps") if form.get("fps") is not None else d["fps"]
    _range("fps", fps, 1, limits.max_fps, "max_fps")
    steps = form.get("steps") if form.get("steps") is not None else d["steps"]
    _range("steps", steps, 1, limits.max_steps, "max_steps")
    guidance = form.get("guidance") if form.get("guidance") is not None else d["guidance"]
    _range("guidance", guidance, 0.0, limits.max_guidance, "max_guidance")
    seed = form.get("seed") if form.get("seed") is not None else 0
    _range("seed", seed, 0, 2**63 - 1)

    # Sizes: the inputs' own size unless asked otherwise, and all inputs must agree (the pipeline pastes them).
    height, width = form.get("height"), form.get("width")
    for name, (t, h, w) in inputs.items():
        if t > limits.max_input_frames:
            raise InputError(f"upload {name!r} has more than {limits.max_input_frames} frames", "max_input_frames")
        height, width = h if height is None else height, w if width is None else width  # 0 is a value, refused below
        if (h, w) != (height, width):
            raise InputError(f"upload {name!r} is {w}x{h} (WxH) but the video is {width}x{height}; resize it or"
                             f" set width={w} height={h}", name)
    height, width = d["height"] if height is None else height, d["width"] if width is None else width
    _range("height", height, 1, limits.max_height, "max_height")
    _range("width", width, 1, limits.max_width, "max_width")

    frames = form.get("frames")
    if frames is None and form.get("seconds") is not None:
        if not 0 < form["seconds"] <= limits.max_frames / fps:
            raise InputError(f"seconds must be in (0, {limits.max_frames / fps:g}] at {fps:g} fps, got"
                             f" {form['seconds']}", "max_frames")
        frames = frames_for_seconds(pipe, form["seconds"], fps)
    if mode in ("extend", "connect"):
        frames = d["frames"] - 1 if frames is None else frames  # new frames; the pipeline rounds them up to its latent grid
    elif mode == "edit":
        t = inputs["video"][0]
        frames = 1 + 4 * ((t - 1) // 4)  # the longest prefix the pipeline re-generates
    else:
        frames = d["frames"] if frames is None else frames
    _range("frames", frames, 1, limits.max_frames, "max_frames")

    try:
        if mode in ("extend", "connect"):
            pipe.check_size(1, height, width)  # spatial only: the pipeline chooses the frame count
        else:
            pipe.check_size(frames, height, width)
    except ValueError as e:
        raise InputError(str(e), "size") from None

    params = dict(prompt=prompt, frames=frames, height=height, width=width, fps=fps, steps=steps,
                  guidance=guidance, seed=seed)
    if form.get("sampler"):
        from ..sampler import SAMPLERS

        if form["sampler"] not in SAMPLERS:
            raise InputError(f"unknown sampler {form['sampler']!r}; choose from {', '.join(SAMPLERS)}", "sampler")
        params["sampler"] = form["sampler"]
    if mode == "extend":
        direction = form.get("direction") or "forward"
        if direction not in ("forward", "backward"):
            raise InputError(f"direction must be 'forward' or 'backward', got {direction!r}", "direction")
        params["direction"] = direction
    if mode == "edit":
        strength = form.get("strength") if form.get("strength") is not None else 0.6
        if not 0.0 < strength <= 1.0:
            raise InputError(f"strength must be in (0, 1], got {strength}", "strength")
        params["strength"] = strength
    return params


def generate_kwargs(mode: str, params: dict, paths: dict) -> dict:
    """Stored job parameters + upload paths -> keyword arguments of pipe.generate."""
    kw = dict(params)
    if mode == "image":
        kw.update({k: str(paths[k]) for k in ("image", "last_image") if k in paths})
    elif mode == "extend":
        kw["extend"] = str(paths["video"])
    elif mode == "connect":
        kw["connect"] = (str(paths["video_a"]), str(paths["video_b"]))
    elif mode == "loop":
        kw["loop"] = True
    elif mode == "edit":
        kw["edit"] = str(paths["video"])
    return kw
