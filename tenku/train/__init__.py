"""Training: one loop for one process or many (torchrun), and the tasks it runs.

    loop.py              the loop (knows no task) and `tenku train`
    task.py              what every task shares; vae_task.py and dit_task.py the two tasks
    config.py            TrainConfig, its presets, YAML/--set/flags
    state.py             resumable checkpoints (safetensors + JSON, atomic)
    distributed.py       torchrun, DDP/FSDP, the rank record
    data.py, cond_mask.py, ema.py, schedule.py, log.py, preview.py, worldbench.py, vae_loss.py, compile.py,
    run_guard.py         batches, conditioning masks, EMA, LR schedule, logging, previews, the in-training
                         WorldBench pass, VAE losses, torch.compile, the run-folder lock and signals
"""
