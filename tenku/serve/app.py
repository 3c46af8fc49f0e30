"""The HTTP API and web page over the job queue (FastAPI).

    GET  /                       the web page (static/, no build step, nothing fetched from the internet)
    GET  /v1/health              worker alive, queue counts
    GET  /v1/limits              limits, supported modes, the model's defaults and size stride
    POST /v1/jobs                create a job (multipart form; uploads in image/last_image/video/video_a/video_b):
                                 the fields of a GenerateRequest (tenku/request.py), checked as `tenku generate`
                                 checks them; a storyboard prompt or a length past the model's max_frames slides
                                 a window over time, as on the command line
    GET  /v1/jobs                list jobs, newest first (?state=&limit=&offset=)
    GET  /v1/jobs/{id}           state, progress (step/total), queue position, error, result URL
    GET  /v1/jobs/{id}/result    the video (mp4) or image (png)
    POST /v1/jobs/{id}/cancel    cancel a queued job, or a running one at its next sampler step

Errors are JSON `{"detail": message, "limit": name}`: 401 (token), 404, 409 (wrong state), 413 (upload too
big), 415 (upload type), 422 (a limit or the model's sizes), 429 (queue full).
"""

from __future__ import annotations

import logging
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from tenku import __version__
from tenku.data.clips import spatial_stride
from tenku.request import MODES, GenerateRequest
from tenku.data.video_io import VideoReadError, peek_media, read_video
from tenku.serve.guard import Guard
from tenku.serve.jobs import STATES, Conflict, JobStore, QueueFull, Worker
from tenku.serve.limits import SUFFIX_TYPES, UPLOAD_FIELDS, UPLOAD_TYPES, InputError, Limits, check_caps, check_form, \
    input_error, sample_defaults, supported_modes

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("tenku.serve")


class Progress(BaseModel):
    step: int
    total: int


class Job(BaseModel):
    id: str
    state: str  # queued | running | done | failed | cancelled
    mode: str
    prompt: str
    params: dict
    inputs: list[str]  # upload fields given
    progress: Progress
    position: Optional[int] = None  # jobs ahead (queued jobs only)
    error: Optional[str] = None
    cancel_requested: bool = False
    created_at: float
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    result_url: Optional[str] = None
    media_type: Optional[str] = None  # video/mp4 or image/png
    frames: Optional[int] = None


class JobList(BaseModel):
    jobs: list[Job]
    counts: dict[str, int]


def _job_view(store: JobStore, job: dict) -> Job:
    params = {k: v for k, v in job["params"].items() if k != "prompt"}
    done = job["state"] == "done"
    return Job(id=job["id"], state=job["state"], mode=job["mode"], prompt=job["params"]["prompt"], params=params,
               inputs=sorted(job["inputs"]), progress=Progress(step=job["step"], total=job["total"]),
               position=store.position(job) if job["state"] == "queued" else None, error=job["error"],
               cancel_requested=bool(job["cancel_requested"]), created_at=job["created_at"],
               started_at=job["started_at"], finished_at=job["finished_at"],
               result_url=f"/v1/jobs/{job['id']}/result" if done else None,
               media_type=("image/png" if job["result"].endswith(".png") else "video/mp4") if done else None,
               frames=job["frames_out"])


def _error(status: int, message: str, limit: str | None = None, headers=None) -> JSONResponse:
    return JSONResponse({"detail": message, "limit": limit}, status_code=status, headers=headers)


def _store_upload(store: JobStore, limits: Limits, name: str, upload: UploadFile) -> str:
    """Save one upload under a generated name and check that it decodes; returns the stored name."""
    ctype = (upload.content_type or "").split(";")[0].strip().lower()
    suffix = UPLOAD_TYPES.get(ctype)
    if suffix is None:  # browsers send application/octet-stream for some files: fall back to the suffix
        client_suffix = Path(upload.filename or "").suffix.lower()
        suffix = UPLOAD_TYPES.get(SUFFIX_TYPES.get(client_suffix, ""))
    if suffix is None:
        raise InputError(f"upload {name!r} has type {ctype or 'unknown'!r}; accepted: {', '.join(sorted(UPLOAD_TYPES))}",
                         "upload_type", 415)
    path = store.upload_path(uuid.uuid4().hex + suffix)
    size = 0
    try:
        with open(path, "wb") as f:
            while chunk := upload.file.read(1 << 20):
                size += len(chunk)
                if size > limits.max_upload_bytes:
                    raise InputError(f"upload {name!r} is larger than {limits.max_upload_bytes} bytes",
                                     "max_upload_bytes", 413)
                f.write(chunk)
        if size == 0:
            raise InputError(f"upload {name!r} is empty", name)
        try:
            _, h, w = peek_media(path)  # from the header: a small PNG can decode to gigabytes
            if h > limits.max_height or w > limits.max_width:
                raise InputError(f"upload {name!r} is {w}x{h}; the limit is "
                                 f"{limits.max_width}x{limits.max_height}", "max_height")
            frames, _ = read_video(path, max_frames=limits.max_input_frames + 1)
        except VideoReadError:
            raise InputError(f"upload {name!r} is not a decodable image or video", name) from None
        if len(frames) > limits.max_input_frames:
            raise InputError(f"upload {name!r} has more than {limits.max_input_frames} frames", "max_input_frames")
        return path.name
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _check_request(pipe, limits: Limits, mode: str, form: dict, uploads: dict[str, Path]) -> dict:
    """The form and the stored uploads as one GenerateRequest, validated by the pipeline as `tenku generate`
    validates its flags (the same messages), then within the server's caps; returns the job's parameters."""
    options = {k: v for k, v in form.items() if k not in ("prompt", "mode") and v is not None and v != ""}
    request = GenerateRequest(form["prompt"], mode, **options, **{k: str(p) for k, p in uploads.items()})
    try:
        req = pipe.check(request).request  # every default resolved; a long video's frames are its length
    except ValueError as e:
        raise input_error(e) from None
    check_caps(limits, dict(frames=req.frames, height=req.height, width=req.width, fps=req.fps), req.fps)
    return req.options()


def create_app(pipe, data_dir: str | Path, token: str | None = None, limits: Limits | None = None,
               start_worker: bool = True) -> FastAPI:
    """The server for one pipeline object (the real one, or a stand-in in tests) and one data directory."""
    limits = limits or Limits()
    store = JobStore(data_dir)
    worker = Worker(store, pipe)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store.lock()
        recovered = store.recover()
        if any(recovered.values()):
            log.info("recovered after restart: %s", recovered)
        if start_worker:
            worker.start()
        yield
        worker.stop()
        store.unlock()

    # /docs and /redoc load their scripts from a CDN, so they are off; the schema is at /openapi.json.
    app = FastAPI(title="Tenku", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Text-to-video jobs on a persistent queue. See tenku/serve/app.py.")
    app.state.store, app.state.worker, app.state.pipe, app.state.limits = store, worker, pipe, limits
    # The token and the body size are checked as bytes arrive, before anything is spooled (guard.py).
    app.add_middleware(Guard, token=token, max_body=limits.max_upload_bytes * len(UPLOAD_FIELDS) + (1 << 20),
                       per_file=limits.max_upload_bytes)

    _add_error_handlers(app)
    api = APIRouter(prefix="/v1")
    _add_info_routes(api, pipe, store, worker, limits, start_worker)
    _add_submit_route(api, pipe, store, limits)
    _add_job_routes(api, store)
    app.include_router(api)

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError):
        # FastAPI's own shape is a list of pydantic records; ours names the first bad field in one sentence.
        err = e.errors()[0]
        field = str(err["loc"][-1]) if err.get("loc") else "request"
        if err.get("type") == "missing":
            message = f"{field} is required" + (" (a non-empty string)" if field == "prompt" else "")
        else:
            message = f"{field}: {err.get('msg', 'invalid value')}, got {err.get('input')!r}"
        return _error(422, message, field)

    @app.exception_handler(InputError)
    async def input_error(request: Request, e: InputError):
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
        return _error(e.status, e.message, e.limit, headers)


def _add_info_routes(api: APIRouter, pipe, store: JobStore, worker: Worker, limits: Limits, start_worker: bool) -> None:
    @api.get("/health")
    def health():
        return {"status": "ok" if worker.alive() or not start_worker else "worker stopped",
                "worker_alive": worker.alive(), "running": worker.current, "counts": store.counts(),
                "version": __version__}

    @api.get("/limits")
    def get_limits():
        return {"limits": limits.to_dict(), "modes": list(MODES), "supported_modes": supported_modes(pipe),
                "defaults": sample_defaults(pipe.cfg), "stride": spatial_stride(pipe.cfg),
                "upload_fields": list(UPLOAD_FIELDS), "upload_types": sorted(UPLOAD_TYPES)}


def _add_submit_route(api: APIRouter, pipe, store: JobStore, limits: Limits) -> None:
    @api.post("/jobs", status_code=201, response_model=Job)
    def create_job(
        prompt: str = Form(..., description="what the video shows, or a storyboard '0-5s: ...; 5-10s: ...'"),
        mode: str = Form("text", description="text | image | extend | connect | loop | edit"),
        frames: Optional[int] = Form(None, description="frame count: 1 + 4k for one clip, any count past the "
                                     "model's max_frames (a sliding window); new frames for extend/connect"),
        seconds: Optional[float] = Form(None, description="duration instead of frames"),
        height: Optional[int] = Form(None), width: Optional[int] = Form(None), fps: Optional[float] = Form(None),
        steps: Optional[int] = Form(None), guidance: Optional[float] = Form(None), seed: Optional[int] = Form(None),
        sampler: Optional[str] = Form(None), direction: Optional[str] = Form(None, description="extend: forward | backward"),
        strength: Optional[float] = Form(None, description="edit: 0 keeps the video, 1 ignores it"),
        window: Optional[int] = Form(None, description="long video: frames per window (default: the model's max_frames)"),
        history: Optional[int] = Form(None, description="long video: frames each window continues from (default 5)"),
        image: Optional[UploadFile] = File(None, description="image mode: the first frame"),
        last_image: Optional[UploadFile] = File(None, description="image mode: the last frame"),
        video: Optional[UploadFile] = File(None, description="extend / edit: the input video"),
        video_a: Optional[UploadFile] = File(None, description="connect: the first video"),
        video_b: Optional[UploadFile] = File(None, description="connect: the second video"),
    ):
        form = dict(prompt=prompt, mode=mode, frames=frames, seconds=seconds, height=height, width=width, fps=fps,
                    steps=steps, guidance=guidance, seed=seed, sampler=sampler, direction=direction, strength=strength,
                    window=window, history=history)
        given = {k: u for k, u in dict(image=image, last_image=last_image, video=video, video_a=video_a,
                                       video_b=video_b).items() if u is not None and (u.filename or u.size)}
        mode = check_form(pipe, limits, form, set(given))  # cheap checks before reading any upload
        check_caps(limits, form, pipe.cfg.sample.fps if fps is None else fps)
        counts = store.counts()
        if counts["queued"] + counts["running"] >= limits.max_queue:  # again, atomically, in store.add
            raise InputError(f"the queue is full (max_queue is {limits.max_queue}); try again later", "max_queue", 429)
        stored: dict[str, str] = {}
        try:
            for name, up in given.items():
                stored[name] = _store_upload(store, limits, name, up)
            params = _check_request(pipe, limits, mode, form, {n: store.upload_path(s) for n, s in stored.items()})
            job = store.add(mode, params, stored, limits.max_queue)
        except QueueFull as e:
            for n in stored.values():
                store.upload_path(n).unlink(missing_ok=True)
            raise InputError(str(e), "max_queue", 429) from None
        except BaseException:
            for n in stored.values():
                store.upload_path(n).unlink(missing_ok=True)
            raise
        return _job_view(store, job)


def _add_job_routes(api: APIRouter, store: JobStore) -> None:
    @api.get("/jobs", response_model=JobList)
    def list_jobs(state: Optional[str] = Query(None, description="only jobs in this state"),
                  limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)):
        if state is not None and state not in STATES:
            raise InputError(f"unknown state {state!r}; choose from {', '.join(STATES)}", "state")
        jobs = store.list(state, limit, offset)
        return JobList(jobs=[_job_view(store, j) for j in jobs], counts=store.counts())

    def _get(job_id: str) -> dict:
        job = store.get(job_id)
        if job is None:
            raise InputError(f"no job {job_id!r}", "job", 404)
        return job

    @api.get("/jobs/{job_id}", response_model=Job)
    def get_job(job_id: str):
        return _job_view(store, _get(job_id))

    @api.get("/jobs/{job_id}/result", response_class=FileResponse,
             responses={200: {"content": {"video/mp4": {}, "image/png": {}}}})
    def get_result(job_id: str):
        job = _get(job_id)
        if job["state"] != "done":
            raise InputError(f"job {job_id} is {job['state']}; the result exists once it is done", "state", 409)
        path = store.result_path(job)
        if path is None or not path.is_file():
            raise InputError(f"the result file of job {job_id} is missing from the data directory", "result", 404)
        media = "image/png" if path.suffix == ".png" else "video/mp4"
        return FileResponse(path, media_type=media, filename=f"tenku-{job_id}{path.suffix}",
                            content_disposition_type="inline")

    @api.post("/jobs/{job_id}/cancel", response_model=Job)
    def cancel_job(job_id: str):
        _get(job_id)
        try:
            job = store.request_cancel(job_id)
        except Conflict as e:
            raise InputError(str(e), "state", 409) from None
        return _job_view(store, job)
