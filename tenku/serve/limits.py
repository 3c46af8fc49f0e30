"""What the server accepts beyond what the model accepts: caps on one job and on uploads.

The request itself (modes and their inputs, defaults, sizes, storyboards, one clip or a sliding window) is
checked by tenku/request.py, the same check `tenku generate` runs, so its refusals read the same here; this
module holds only the server's own caps. Every refusal is an `InputError` carrying the HTTP status and the
name of the limit or field that was broken, so a client (and the web page) can say exactly what to change.
Nothing here touches the queue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tenku.request import INPUT_FIELDS, MODE_INPUTS, MODES, RequestError, check_mode, check_prompt

UPLOAD_FIELDS = INPUT_FIELDS  # an upload field fills the request field of the same name
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
    max_prompt_chars: int = 2000  # a prompt or a storyboard
    max_frames: int = 481  # generated frames per job: 60 s at 8 fps (a sliding window past the model's max_frames)
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


# Job fields the server caps: (field, lowest, the Limits attribute holding the highest).
CAPS = (("frames", 1, "max_frames"), ("height", 1, "max_height"), ("width", 1, "max_width"),
        ("steps", 1, "max_steps"), ("guidance", 0.0, "max_guidance"), ("fps", 1, "max_fps"), ("window", 1, "max_frames"))


def sample_defaults(cfg) -> dict:
    """The model's generation defaults (config.json "sample"), for forms and unset fields."""
    d = cfg.sample
    return dict(frames=d.frames, height=d.height, width=d.width, fps=d.fps, steps=d.steps, guidance=d.guidance,
                sampler=d.sampler, max_frames=d.max_frames)


def supported_modes(pipe) -> list[str]:
    """The modes the pipeline declares (`pipe.modes`; text only for one that declares none)."""
    declared = set(getattr(pipe, "modes", {"text"}))
    return [m for m in MODES if m in declared]


def input_error(e: RequestError) -> InputError:
    """The request's own refusal, word for word (the command line prints the same), as a 422."""
    return InputError(str(e), getattr(e, "field", "request"))


def check_form(pipe, limits: Limits, form: dict, uploads: set[str]) -> str:
    """The cheap checks before any upload is read: the mode (supported here), the prompt, and which upload
    fields the mode reads. Returns the mode."""
    mode = form.get("mode") or "text"
    try:
        check_mode(mode)
        check_prompt(form.get("prompt"))
    except RequestError as e:
        raise input_error(e) from None
    if mode not in supported_modes(pipe):
        raise InputError(f"mode {mode!r} is not supported by this model/pipeline yet", "mode")
    if len(form["prompt"]) > limits.max_prompt_chars:
        raise InputError(f"prompt is {len(form['prompt'])} characters; the limit is {limits.max_prompt_chars}",
                         "max_prompt_chars")
    wanted = MODE_INPUTS[mode]
    extra = sorted(uploads - set(wanted))
    if extra:
        raise InputError(f"mode {mode!r} takes no upload {extra[0]!r}", extra[0])
    missing = [name for name in wanted if name not in uploads]
    if mode == "image" and len(missing) == 2:
        raise InputError("mode 'image' needs an upload in field 'image' and/or 'last_image'", "image")
    if mode != "image" and missing:
        raise InputError(f"mode {mode!r} needs an upload in field {missing[0]!r}", missing[0])
    return mode


def check_caps(limits: Limits, values: dict, fps: float) -> None:
    """The server's caps on the fields given (None: not given); `seconds` is capped as max_frames at `fps`.
    Run on the form as sent, then on the validated request (defaults, lengths from seconds or a storyboard)."""
    for name, lo, limit in CAPS:
        v, hi = values.get(name), getattr(limits, limit)
        if v is not None and not lo <= v <= hi:
            raise InputError(f"{name} must be between {lo} and {hi}, got {v}", limit)
    seconds = values.get("seconds")
    if seconds is not None and not 0 < seconds <= limits.max_frames / fps:
        raise InputError(f"seconds must be in (0, {limits.max_frames / fps:g}] at {fps:g} fps, got {seconds}",
                         "max_frames")
    seed = values.get("seed")
    if seed is not None and not 0 <= seed <= 2**63 - 1:
        raise InputError(f"seed must be between 0 and {2**63 - 1}, got {seed}", "seed")
