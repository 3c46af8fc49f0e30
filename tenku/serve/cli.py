"""The `tenku serve` sub-command: load the model once, then serve the web page and API with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path

from tenku.cli_args import add_device, add_precision, run

DEFAULT_DATA_DIR = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "tenku" / "serve"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=7860, help="TCP port")
    p.add_argument("--model", help="model directory (default: the model shipped with Tenku)")
    add_device(p, "the model")
    add_precision(p)
    p.add_argument("--compile", action="store_true", help="sample through torch.compile of the DiT: faster clips"
                   " once each clip size has compiled (tens of seconds on a CPU, at its first request)")
    p.add_argument("--lora", metavar="DIR", help="LoRA adapter folder folded into the model at start")
    p.add_argument("--lora-scale", type=float, default=1.0, help="how much of the adapter's change to apply")
    p.add_argument("--data-dir", default=os.environ.get("TENKU_DATA_DIR", str(DEFAULT_DATA_DIR)),
                   help="where jobs (SQLite) and media are kept; default $TENKU_DATA_DIR or %(default)s")
    p.add_argument("--token", default=os.environ.get("TENKU_TOKEN"),
                   help="require 'Authorization: Bearer TOKEN' on every API call (or set $TENKU_TOKEN)")
    p.add_argument("--max-queue", type=int, help="most jobs queued or running at once")
    p.add_argument("--max-upload-mb", type=float, help="largest upload, per file")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def load_model(args):
    """The pipeline `tenku serve` serves: --model (or the shipped default), with --lora folded in."""
    from tenku.train.distributed import pick_device
    from tenku.pipeline import load_pipeline

    pipe = load_pipeline(args.model, pick_device(args.device), precision=args.precision)
    if args.lora:
        pipe.apply_lora(args.lora, args.lora_scale)
    return pipe.compile() if args.compile else pipe


def cmd_serve(args, make_pipeline=load_model) -> int:
    """Serve until stopped. `make_pipeline(args)` builds what is served (a test passes a stand-in)."""
    from tenku.serve import INSTALL_HINT, missing_extras

    if missing_extras():  # a plain install has no server packages: say how to get them, not a traceback
        print(f"tenku serve needs the server extras: {INSTALL_HINT}; missing: {', '.join(missing_extras())}",
              file=sys.stderr)
        return 2
    import uvicorn

    from tenku.serve.app import create_app
    from tenku.serve.jobs import JobStore
    from tenku.serve.limits import Limits

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # A second server on the same data directory is refused before the model is loaded (minutes, gigabytes);
    # the lock the app takes at startup stays the one that counts.
    probe = JobStore(args.data_dir)
    try:
        probe.lock()
    except RuntimeError as e:
        print(f"tenku serve: {e}; stop it, or choose another --data-dir", file=sys.stderr)
        return 2
    finally:
        probe.unlock()
        probe.close()
    pipe = make_pipeline(args)  # a bad --model or --lora: ValueError / FileNotFoundError, exit 2 (cli_args.run)
    limits = Limits()
    if args.max_queue is not None:
        limits.max_queue = args.max_queue
    if args.max_upload_mb is not None:
        limits.max_upload_bytes = int(args.max_upload_mb * 1024 * 1024)
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback and not args.token:
        print(f"tenku serve: warning: listening on {args.host} without --token; anyone who can reach it can"
              " submit jobs", file=sys.stderr)
    app = create_app(pipe, args.data_dir, token=args.token, limits=limits)
    print(f"tenku serve: http://{args.host}:{args.port}/  (data: {args.data_dir})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("serve", help="web page and HTTP API over a persistent job queue")
    add_arguments(p)
    p.set_defaults(func=cmd_serve)


def main(argv: list[str] | None = None, make_pipeline=load_model) -> int:
    p = argparse.ArgumentParser(prog="python -m tenku.serve", description="Tenku web page and HTTP API.")
    add_arguments(p)
    p.set_defaults(func=lambda args: cmd_serve(args, make_pipeline))
    return run(p.parse_args(argv), prog="python -m tenku.serve")
