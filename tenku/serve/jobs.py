"""A persistent job queue: job records in SQLite, media as files, one worker thread running the pipeline.

Layout of the data directory:
    jobs.sqlite3          one row per job (WAL journal: a SIGKILL loses nothing that was acknowledged)
    uploads/<uuid>.<ext>  client uploads, named by us (client file names never become paths)
    results/<job id>.mp4  finished videos (.png for one frame), written to a temporary name and renamed

Jobs run one at a time in the order received (`seq`). A job that was running when the process died is
queued again on the next start, ahead of the jobs queued after it, so a restart keeps the order; after
MAX_ATTEMPTS such starts it ends as failed (a job that kills the server must not kill it on every restart).
A job's uploads are deleted when it ends: nothing reads them again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from tenku.request import GenerateRequest

log = logging.getLogger("tenku.serve")

STATES = ("queued", "running", "done", "failed", "cancelled")
MAX_ATTEMPTS = 3  # starts of one job that ended with the process dying
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    state TEXT NOT NULL,
    mode TEXT NOT NULL,
    params TEXT NOT NULL,
    inputs TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    step INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    result TEXT,
    frames_out INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
"""


class QueueFull(Exception):
    pass


class Conflict(Exception):
    pass


class JobStore:
    """Job records (SQLite) and media files under one data directory. Thread-safe."""

    def __init__(self, data_dir: str | Path):
        self.dir = Path(data_dir)
        self.uploads, self.results = self.dir / "uploads", self.dir / "results"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.results.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.wake = threading.Event()  # set when a job is queued
        self._cancel: set[str] = set()  # running jobs asked to stop (read by the worker every step)
        self._db = sqlite3.connect(self.dir / "jobs.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes (not power loss)
        self._db.executescript(_SCHEMA)

    def lock(self) -> None:
        """Hold the data directory for this process; a second server on it would requeue our running job."""
        self._lock_file = open(self.dir / "lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise RuntimeError(f"{self.dir} is in use by another tenku serve process") from None

    def unlock(self) -> None:
        if getattr(self, "_lock_file", None) is not None:
            self._lock_file.close()  # closing releases the flock (the OS also releases it if we are killed)
            self._lock_file = None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- reading
    def _row(self, row) -> dict | None:
        if row is None:
            return None
        job = dict(row)
        job["params"], job["inputs"] = json.loads(job["params"]), json.loads(job["inputs"])
        return job

    def get(self, job_id: str) -> dict | None:
        with self._lock:
            return self._row(self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def list(self, state: str | None = None, limit: int = 100, offset: int = 0, newest_first: bool = True) -> list[dict]:
        order = "DESC" if newest_first else "ASC"
        where, args = ("WHERE state = ?", [state]) if state else ("", [])
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM jobs {where} ORDER BY seq {order} LIMIT ? OFFSET ?",
                                    (*args, limit, offset)).fetchall()
        return [self._row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {s: 0 for s in STATES} | {r[0]: r[1] for r in rows}

    def position(self, job: dict) -> int:
        """Jobs ahead of a queued job (the running one included)."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE (state = 'queued' AND seq < ?) OR state = 'running'",
                                    (job["seq"],)).fetchone()[0]

    def upload_path(self, name: str) -> Path:
        return self.uploads / name

    def result_path(self, job: dict) -> Path | None:
        return self.results / job["result"] if job.get("result") else None

    # ---- writing
    def add(self, mode: str, params: dict, inputs: dict[str, str], max_queue: int) -> dict:
        """Queue a job; QueueFull when `max_queue` jobs are already waiting or running."""
        job_id = uuid.uuid4().hex
        with self._lock:
            waiting = self._db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[0]
            if waiting >= max_queue:
                raise QueueFull(f"the queue is full ({waiting} jobs waiting or running; max_queue is {max_queue})")
            self._db.execute("INSERT INTO jobs (id, state, mode, params, inputs, created_at) VALUES (?, 'queued', ?, ?, ?, ?)",
                             (job_id, mode, json.dumps(params), json.dumps(inputs), time.time()))
        self.wake.set()
        return self.get(job_id)

    def claim_next(self) -> dict | None:
        """The oldest queued job, now marked running; None when the queue is empty."""
        with self._lock:
            row = self._db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE jobs SET state = 'running', started_at = ?, step = 0, total = 0,"
                             " attempts = attempts + 1 WHERE id = ?", (time.time(), row[0]))
            return self.get(row[0])

    def progress(self, job_id: str, step: int, total: int) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET step = ?, total = ? WHERE id = ?", (step, total, job_id))

    def _end(self, job_id: str, state: str, **fields) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET state = ?, finished_at = ?{', ' if sets else ''}{sets} WHERE id = ?",
                             (state, time.time(), *fields.values(), job_id))
            self._cancel.discard(job_id)
        self._remove_uploads(self.get(job_id))

    def _remove_uploads(self, job: dict | None) -> None:
        for name in (job or {}).get("inputs", {}).values():
            self.upload_path(name).unlink(missing_ok=True)

    def finish(self, job_id: str, result: str, frames_out: int) -> None:
        self._end(job_id, "done", result=result, frames_out=frames_out)

    def fail(self, job_id: str, reason: str) -> None:
        self._end(job_id, "failed", error=reason)

    def mark_cancelled(self, job_id: str) -> None:
        self._end(job_id, "cancelled")

    def requeue(self, job_id: str) -> None:
        with self._lock:
            # A stop asked of the worker is not the job's fault: the attempt is given back.
            self._db.execute("UPDATE jobs SET state = 'queued', started_at = NULL, step = 0, total = 0,"
                             " attempts = MAX(attempts - 1, 0) WHERE id = ?", (job_id,))
        self.wake.set()

    def request_cancel(self, job_id: str) -> dict:
        """Cancel a queued job now, or ask a running one to stop at its next sampler step."""
        with self._lock:
            job = self.get(job_id)
            if job is None:
                raise KeyError(job_id)
            if job["state"] == "queued":
                self._end(job_id, "cancelled")
            elif job["state"] == "running":
                self._db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
                self._cancel.add(job_id)
            else:
                raise Conflict(f"job {job_id} is already {job['state']}; only queued or running jobs can be cancelled")
            return self.get(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        return job_id in self._cancel

    def recover(self) -> dict[str, int]:
        """After a restart: jobs that were running are queued again (or cancelled, if that was asked; or failed,
        after MAX_ATTEMPTS starts); uploads of ended jobs are removed."""
        with self._lock:
            cancelled = self._db.execute("UPDATE jobs SET state = 'cancelled', finished_at = ? WHERE state = 'running'"
                                         " AND cancel_requested = 1", (time.time(),)).rowcount
            failed = self._db.execute(
                "UPDATE jobs SET state = 'failed', finished_at = ?, error = ? WHERE state = 'running' AND attempts >= ?",
                (time.time(), f"the server stopped during this job {MAX_ATTEMPTS} times (out of memory or a crash?); "
                              "not retried again", MAX_ATTEMPTS)).rowcount
            requeued = self._db.execute("UPDATE jobs SET state = 'queued', started_at = NULL, step = 0, total = 0"
                                        " WHERE state = 'running'").rowcount
        for f in self.results.glob("*.partial.*"):  # a result the last process did not finish writing
            f.unlink(missing_ok=True)
        for job in self.list("failed", limit=-1) + self.list("cancelled", limit=-1) + self.list("done", limit=-1):
            self._remove_uploads(job)
        if requeued:
            self.wake.set()
        return {"requeued": requeued, "cancelled": cancelled, "failed": failed}


class JobCancelled(Exception):
    pass


class WorkerStopping(Exception):
    pass


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Worker:
    """One thread that runs queued jobs through the pipeline (`pipe.save(GenerateRequest)`), one at a time,
    oldest first."""

    def __init__(self, store: JobStore, pipe):
        self.store, self.pipe = store, pipe
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tenku-worker", daemon=True)
        self.current: str | None = None

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current sampler step; the interrupted job goes back to the queue."""
        self._stop.set()
        self.store.wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.store.claim_next()
            if job is None:
                self.store.wake.wait(0.5)
                self.store.wake.clear()
                continue
            self.current = job["id"]
            try:
                self.run(job)
            finally:
                self.current = None

    def run(self, job: dict) -> None:
        store, job_id, mode = self.store, job["id"], job["mode"]

        def callback(step: int, total: int) -> None:
            store.progress(job_id, step, total)
            if store.cancel_requested(job_id):
                raise JobCancelled(job_id)
            if self._stop.is_set():
                raise WorkerStopping(job_id)

        uploads = {k: str(store.upload_path(v)) for k, v in job["inputs"].items()}  # upload field = request field
        t0 = time.perf_counter()
        try:
            request = GenerateRequest(mode=mode, **job["params"], **uploads)
            name, frames = self._save(job_id, request, callback)
        except JobCancelled:
            store.mark_cancelled(job_id)
            log.info("job %s cancelled", job_id)
        except WorkerStopping:
            store.requeue(job_id)
            log.info("job %s interrupted by shutdown; queued again", job_id)
        except (TypeError, NotImplementedError) as e:
            log.exception("job %s failed", job_id)
            reason = f"mode {mode!r} is not supported by this model/pipeline yet ({e})" if mode != "text" else f"{type(e).__name__}: {e}"
            store.fail(job_id, reason)
        except ValueError as e:  # the pipeline's own checks: the message says what to change
            store.fail(job_id, str(e))
        except Exception as e:  # noqa: BLE001 - a job's failure must never stop the worker
            log.exception("job %s failed", job_id)
            store.fail(job_id, f"{type(e).__name__}: {e}")
        else:
            store.finish(job_id, name, frames)
            log.info("job %s done in %.2fs -> %s", job_id, time.perf_counter() - t0, name)

    def _save(self, job_id: str, request: GenerateRequest, callback) -> tuple[str, int]:
        """Generate into a temporary name, then rename: a crash never leaves half a file. Returns (the result's
        name, its frames)."""
        suffix = ".png" if self.pipe.check(request).one_frame else ".mp4"
        final = self.store.results / f"{job_id}{suffix}"
        tmp = self.store.results / f"{job_id}.partial{suffix}"
        frames = self.pipe.save(request, tmp, callback)
        if self.store.cancel_requested(job_id):
            tmp.unlink(missing_ok=True)
            raise JobCancelled(job_id)
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync(self.store.results)
        return final.name, frames
