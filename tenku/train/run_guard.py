"""What keeps a training run folder sound: one training at a time (a lock), a metrics log that survives a torn
last line, and a checkpoint when the run is asked to stop (Ctrl-C, SIGTERM).

    with lock_run(run), StopSignals() as stop:
        for step in ...:
            ...
            if stop.requested:  # save a checkpoint, then raise TrainingStopped
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path


class TrainingStopped(Exception):
    """A run stopped by a signal after saving a checkpoint; `--resume` continues it."""

    def __init__(self, step: int, checkpoint: Path, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint {checkpoint}; "
                         "continue with --resume")
        self.step, self.checkpoint, self.signum = step, checkpoint, signum


@contextmanager
def lock_run(run: str | Path):
    """Hold RUN/lock for the duration: a second training on the same folder fails at once instead of both
    writing checkpoints and metrics over each other. The OS releases the lock if the process dies."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    f = open(run / "lock", "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise ValueError(f"{run} is in use by another training (pid {holder}); wait for it, or choose another "
                         "--out") from None
    try:
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        f.close()


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl; a torn or corrupted line (disk full, power loss) is dropped with a
    warning naming the file and line, so it never blocks --resume."""
    path = Path(path)
    records = []
    for n, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or not isinstance(rec.get("step"), int):
                raise ValueError("no step")
        except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            warnings.warn(f"{path}:{n}: dropping a torn or corrupted metrics line ({e})", stacklevel=2)
            continue
        records.append(rec)
    return records


class StopSignals:
    """While active, the first SIGINT or SIGTERM only sets `requested` (the loop checkpoints and stops);
    a second one stops at once. Handlers are installed only in the main thread (Python's rule).

    SIGCONT (a process continued after SIGSTOP or Ctrl-Z) is counted in `continued`: a step during which the
    process was paused is not timed by the wall clock (the loop books the step before it instead), so that
    `train_seconds`, the x axis of every learning curve, holds training and not the pause."""

    def __init__(self):
        self.signum: int | None = None
        self.continued = 0
        self._old = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: saving a checkpoint after this step (again to stop at once)",
              file=sys.stderr, flush=True)

    def _count_continue(self, signum, frame):
        self.continued += 1

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
            self._old[signal.SIGCONT] = signal.signal(signal.SIGCONT, self._count_continue)
        return self

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old = {}
