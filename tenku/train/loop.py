"""Training: `tenku train vae|dit`. One loop, `train(cfg)`, for one process or many (torchrun, DDP or FSDP2).

    tenku train dit --preset world-s-cpu --data CACHE_DIR --out runs/s1          # from a latent cache
    tenku train vae --preset world-s-cpu --data clips.jsonl --out runs/vae1      # from a clip manifest
    tenku train dit --config recipes/world-xs-dit.yaml --batch-size 8 --set lr=3e-4 ...   # a recipe, overridden
    torchrun --nproc_per_node 8 -m tenku.cli train dit --preset world-s-gpu --data CACHE --out RUN
    ... --resume                                                                # continue from RUN's last checkpoint

The loop knows no task: a task (VAETask in tenku/train/vae_task.py, DiTTask in tenku/train/dit_task.py; shared parts
in tenku/train/task.py) brings its models, its loss on a batch, what it logs and what it exports; the loop
sets the learning rate (train_schedule.py), steps the optimizer, averages the EMA (ema.py), logs
(train_log.py), checkpoints and stops.

The run folder holds config.json (the resolved TrainConfig and ModelConfig), checkpoints/, tensorboard/,
metrics.jsonl (one JSON line per logged step), samples/ (DiT) and, at the end, model/: a model directory that
`tenku generate --model RUN/model` loads (EMA weights). See tenku/train/distributed.py for multi-node and FSDP.

Exact resume: a checkpoint holds the model, EMA, optimizer, step (the LR schedule is a function of the step),
every RNG (torch, CUDA, numpy, python and the task's named generators) and the batch sampler's position, so a
killed and resumed run repeats the losses of an uninterrupted one bit for bit on CPU (tests/test_train.py).
A checkpoint is also written every `checkpoint_minutes`, and when SIGINT/SIGTERM asks the run to stop;
`max_train_minutes` ends the run like its last step once that much time went into training steps.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from tenku.train import distributed
from tenku.checkpoint import save_json
from tenku.train.ema import ema_update
from tenku.train.run_guard import StopSignals, TrainingStopped, lock_run
from tenku.train.config import TRAIN_PRESETS, TrainConfig, add_arguments, flags, resolve
from tenku.train.dit_task import DiTTask
from tenku.train.log import Log, Window
from tenku.train.schedule import set_lr
from tenku.train.task import Context, Task
from tenku.train.vae_task import VAETask

TASKS: dict[str, type[Task]] = {"vae": VAETask, "dit": DiTTask}


def train(cfg: TrainConfig, resume_run: bool = False, dataset=None, collate=None, val_dataset=None) -> Path:
    """Train a VAE (cfg.task == "vae") or a DiT ("dit") into cfg.out. Returns the exported model directory.

    One code path for one process or many: under torchrun each process takes its share of every epoch's
    batches and gradients are averaged (DDP) or parameters sharded (FSDP2). `dataset`/`collate` replace the
    data named by cfg.data (tests, custom data): a Dataset with `.buckets` whose items the collate stacks.
    The run folder is locked for the run (rank 0 holds the lock); SIGINT/SIGTERM save a checkpoint and raise
    TrainingStopped.
    """
    if cfg.out is None:
        raise ValueError("no run folder: pass --out RUN_DIR")
    main = int(os.environ.get("RANK", "0")) == 0  # torchrun tears the other ranks down if rank 0 cannot lock
    with (lock_run(cfg.out) if main else nullcontext()), StopSignals() as stop:
        ctx = Context.start(cfg, resume_run)
        mcfg = cfg.model_config()
        task = TASKS[cfg.task](cfg, mcfg, ctx, dataset, collate, val_dataset)
        start, clock = task.resume() if resume_run else (0, 0.0)
        if ctx.info.main:
            save_json(ctx.run / "config.json", {"train": cfg.to_dict(), "model": mcfg.to_dict(),
                                                "world_size": ctx.info.world_size})
        out = loop(task, start, clock, stop)
        distributed.cleanup(ctx.info)
        return out


def loop(task: Task, start: int, clock: float, stop: StopSignals) -> Path:
    """Steps `start + 1 .. cfg.steps` (or until the time budget or a signal), then the export.

    `clock` counts seconds spent in training steps alone (no evaluation, samples or checkpoints), carried
    across resumes: the x axis of a learning curve against CPU time. A step during which the process was
    paused (SIGSTOP, then SIGCONT) books the previous step's time instead of the pause.
    """
    cfg, info = task.cfg, task.ctx.info
    log = Log(cfg, task.ctx.run, start, info.main)
    window, last_save = Window(info.device), time.monotonic()
    last_step = 0.0  # seconds of the last step that ran without a pause
    for step in range(start + 1, cfg.steps + 1):
        # 1. One optimizer step over grad_accum micro-batches (DDP syncs gradients on the last only).
        step_t0, continued = time.perf_counter(), stop.continued
        lr = set_lr(task.optimizer, step, cfg)
        for micro in range(cfg.grad_accum):
            with task.sync(micro == cfg.grad_accum - 1):
                loss, samples, tokens, parts = task.loss(next(task.batches), step)
                (loss / cfg.grad_accum).backward()
            window.add(loss, parts, samples, tokens, cfg.grad_accum)
        grad_norm = torch.nn.utils.clip_grad_norm_(task.params, cfg.grad_clip) if cfg.grad_clip > 0 else None
        task.optimizer.step()
        task.optimizer.zero_grad(set_to_none=True)
        task.after_step(step)
        if task.ema is not None:
            ema_update(task.ema, task.model, cfg.ema_decay)
        if stop.continued == continued:
            last_step = time.perf_counter() - step_t0
        clock += last_step
        # The last step: the step count, or the budget of training time (max_train_minutes) spent.
        final = step == cfg.steps or (cfg.max_train_minutes > 0 and distributed.all_agree(
            info, clock < cfg.max_train_minutes * 60) is False)
        window.steps += 1
        log.advance()

        # 2. Logs (losses averaged over the window and over ranks), then the task's evaluations.
        if step % cfg.log_every == 0 or final:
            scalars = window.scalars(info, lr, clock, task.throughput, grad_norm)
            log(step, scalars, task.postfix(scalars))
            window = Window(info.device)
        for record in task.evaluate(step, final, clock):
            log(step, record)

        # 3. Checkpoints: every checkpoint_every steps, every checkpoint_minutes, at the end, and when a signal
        # asks the run to stop. Any rank's clock or signal counts, so that every rank saves (and stops) together.
        stopping = not info.agree(not stop.requested)
        late = bool(cfg.checkpoint_minutes) and time.monotonic() - last_save > 60 * cfg.checkpoint_minutes
        if step % cfg.checkpoint_every == 0 or final or stopping or not info.agree(not late):
            saved = task.save(step, lr, clock)
            last_save = time.monotonic()
        if cfg.snapshot_every and step % cfg.snapshot_every == 0:  # kept for weight averaging (tenku/average.py)
            task.export(task.ctx.run / "snapshots" / f"step_{step:08d}")
        if final:
            break
        if stopping:
            log.close()
            raise TrainingStopped(step, saved, stop.signum or 15)
    log.close()

    # 4. Export a model directory with the EMA weights.
    return task.export(task.ctx.run / "model")


# ----------------------------------------------------------------------------- command line

def cmd_train(args) -> int:
    cfg = resolve(args.preset, args.config, args.set, **flags(args))  # the task too: a positional field
    try:
        out = train(cfg, resume_run=args.resume)
    except TrainingStopped as e:
        print(f"tenku train: {e}", file=sys.stderr)
        return 128 + e.signum  # the shell's convention for a process ended by a signal
    if int(os.environ.get("RANK", 0)) == 0:
        print(out)
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the VAE or the DiT (one process, or many under torchrun)",
                              description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("task", choices=sorted(TASKS), help="what to train")
    p.add_argument("--preset", default="tiny-test", choices=sorted(TRAIN_PRESETS), help="training preset")
    p.add_argument("--config", metavar="YAML", help="YAML file of TrainConfig fields (overrides the preset)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="override one TrainConfig field (repeatable), e.g. --set lr=3e-4 --set model.dit.num_layers=4")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last complete checkpoint")
    add_arguments(p)
    p.set_defaults(func=cmd_train)
