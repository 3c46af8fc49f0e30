"""Training: frame-conditioning masks, LR schedule, DiT and VAE losses fall, exact kill -9 / resume, 2-process gloo."""

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import torch

from tenku.data.cache import collate_latents
from tenku.checkpoint import load_state
from tenku.train.cond_mask import random_cond_mask
from tenku.train.loop import train
from tenku.train.schedule import lr_at
from tenku.train.vae_task import random_crop
from tenku.train.config import resolve

ROOT = Path(__file__).resolve().parents[2]

# Stand-in data shared by the in-process tests and the subprocess scripts (fixed random latents + text states,
# and smooth moving patterns as videos, one-frame "images" included).
DATA = textwrap.dedent('''
    import math, os, time, torch

    class FixedLatents(torch.utils.data.Dataset):
        def __init__(self, n=8, C=4, T=3, h=4, w=4, D=384, seed=0, delay=0.0, scale=1.0):
            g = torch.Generator().manual_seed(seed)
            self.lat = [scale * torch.randn(C, T, h, w, generator=g) for _ in range(n)]
            self.txt = [torch.randn(3 + i % 3, D, generator=g) for i in range(n)]
            self.buckets = [(C, T, h, w)] * n
            self.delay = delay
        def __len__(self):
            return len(self.lat)
        def __getitem__(self, i):
            time.sleep(self.delay)
            return {"latent": self.lat[i], "text": self.txt[i], "caption": f"clip {i}", "index": i}

    class MovingPatterns(torch.utils.data.Dataset):
        """A coloured square moving over a coloured background; every third clip is a one-frame image."""
        def __init__(self, n=12, size=32):
            self.n, self.size = n, size
            self.buckets = [(1 if i % 3 == 0 else 5, size, size) for i in range(n)]
        def __len__(self):
            return self.n
        def __getitem__(self, i):
            T, H, W = self.buckets[i]
            g = torch.Generator().manual_seed(i)
            bg, fg = torch.rand(2, 3, generator=g) * 1.6 - 0.8  # colours
            video = bg.view(3, 1, 1, 1).repeat(1, T, H, W)
            for t in range(T):
                x = (4 + 3 * t + 2 * i) % (W - 8)
                video[:, t, 8:16, x:x + 8] = fg.view(3, 1, 1)
            return {"video": video, "caption": f"pattern {i}", "index": i}  # (3, T, H, W)
''')
exec(DATA)


def _losses(run):
    return {d["step"]: d["loss"] for d in map(json.loads, (Path(run) / "metrics.jsonl").read_text().splitlines())
            if "loss" in d}


# ----------------------------------------------------------------------------- conditioning and schedule

def test_random_crop_is_a_window_of_the_clip_and_seeded():
    video = torch.arange(2 * 3 * 5 * 48 * 80, dtype=torch.float32).view(2, 3, 5, 48, 80)
    crops = [random_crop(video, 32, torch.Generator().manual_seed(s)) for s in (0, 0, 1, 2, 3)]
    assert all(c.shape == (2, 3, 5, 32, 32) for c in crops)
    assert torch.equal(crops[0], crops[1])  # same seed, same window
    assert len({(int(c[0, 0, 0, 0, 0]) // 80, int(c[0, 0, 0, 0, 0]) % 80) for c in crops}) > 2  # windows move
    for c in crops:  # a contiguous window: the top-left pixel fixes every other one
        y, x = divmod(int(c[0, 0, 0, 0, 0]), 80)
        assert torch.equal(c, video[..., y:y + 32, x:x + 32])
    assert random_crop(video, 64, torch.Generator()).shape[-2:] == (48, 64)  # a short side is kept whole


def test_random_cond_mask_modes():
    g = torch.Generator().manual_seed(0)
    T = 6
    for mode, check in {
        "none": lambda m: not m.any(),
        "first": lambda m: m[0] and m.sum() == 1,
        "first_k": lambda m: m[0] and m.sum() >= 1 and (m.int().diff() <= 0).all(),  # a prefix
        "last": lambda m: m[-1] and (m.int().diff() >= 0).all(),  # a suffix
        "first_last": lambda m: m[0] and m[-1] and m.sum() == 2,
        "middle": lambda m: not m[0] and not m[-1] and m.any() and (m.int().diff().abs().sum() == 2),  # one inner span
    }.items():
        mask = random_cond_mask(64, T, {mode: 1.0}, g)
        assert mask.shape == (64, T) and mask.dtype == torch.bool
        assert all(check(m) for m in mask), mode
        assert not mask.all(dim=1).any(), "at least one frame must be generated"
    mixed = random_cond_mask(400, T, resolve("tiny-test").cond_probs, g)
    assert 0.35 < (~mixed.any(1)).float().mean() < 0.65  # "none" has weight 0.5
    assert not random_cond_mask(16, 1, {"first": 1.0}, g).any()  # images: nothing can be given
    short = random_cond_mask(16, 2, {"first_last": 1.0, "middle": 1.0}, g)
    assert not short.any()  # needs 3 frames: falls back to none
    again = random_cond_mask(32, T, {"first_k": 1, "last": 1}, torch.Generator().manual_seed(5))
    assert torch.equal(again, random_cond_mask(32, T, {"first_k": 1, "last": 1}, torch.Generator().manual_seed(5)))


def test_lr_schedule():
    cfg = resolve("tiny-test", sets=["lr=1.0", "warmup_steps=10", "steps=110", "min_lr_ratio=0.1"])
    assert lr_at(5, cfg) == pytest.approx(0.5) and lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55) and lr_at(110, cfg) == pytest.approx(0.1)
    const = resolve("tiny-test", sets=["lr=1.0", "warmup_steps=10", "schedule=constant"])
    assert lr_at(1000, const) == 1.0


# ----------------------------------------------------------------------------- losses fall, exports load

def test_dit_loss_falls_and_exports_a_model_dir(tmp_path):
    cfg = resolve("tiny-test", sets=["steps=60", "lr=1e-2", "warmup_steps=5", "checkpoint_every=30", "ema_decay=0.9",
                                     "cond_probs={none: 0.5, first: 0.25, last: 0.25}"], task="dit", out=str(tmp_path))
    with pytest.warns(UserWarning, match="untrained VAE"):
        out = train(cfg, dataset=FixedLatents(n=4, scale=3.0), collate=collate_latents)
    loss = _losses(tmp_path)
    first = sum(loss[s] for s in range(1, 11)) / 10
    last = sum(loss[s] for s in range(51, 61)) / 10
    assert last < 0.7 * first, (first, last)  # mostly the data's predictable part
    from tenku.models.dit import DiT
    from tenku.checkpoint import load_model_config

    mcfg = load_model_config(out)
    load_state(DiT(mcfg.dit), out / "dit.safetensors")  # the exported EMA weights load
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["train"]["steps"] == 60 and saved["model"]["dit"]["num_layers"] == 2
    assert (tmp_path / "tensorboard").is_dir() and len(list((tmp_path / "checkpoints").iterdir())) == 2


def test_bf16_autocast_on_the_cpu_trains_like_fp32_and_keeps_fp32_weights(tmp_path):
    # precision=bf16 on a CPU with native bf16 matmuls (bench/core.py) runs the matmuls in bfloat16.
    lasts = {}
    for precision in ("fp32", "bf16"):
        cfg = resolve("tiny-test", sets=["steps=40", "lr=1e-2", "warmup_steps=5", "checkpoint_every=40",
                                         f"precision={precision}"], task="dit", out=str(tmp_path / precision))
        with pytest.warns(UserWarning, match="untrained VAE"):
            out = train(cfg, dataset=FixedLatents(n=4, scale=3.0), collate=collate_latents)
        loss = _losses(tmp_path / precision)
        lasts[precision] = sum(loss[s] for s in range(31, 41)) / 10
        assert lasts[precision] < 0.7 * sum(loss[s] for s in range(1, 11)) / 10
        from safetensors import safe_open

        with safe_open(str(out / "dit.safetensors"), "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F32"}
    assert abs(lasts["bf16"] - lasts["fp32"]) < 0.15 * lasts["fp32"], lasts


def test_vae_loss_falls_reports_psnr_and_stores_latent_stats(tmp_path):
    cfg = resolve("tiny-test", sets=["steps=50", "lr=1e-2", "warmup_steps=4", "checkpoint_every=25", "ema_decay=0",
                                     "batch_size=2", "eval_every=25", "adv_weight=0.1", "adv_start=40"],
                  task="vae", out=str(tmp_path))
    out = train(cfg, dataset=MovingPatterns(n=6), val_dataset=MovingPatterns(n=3))
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rec = {d["step"]: d["rec"] for d in lines if "rec" in d}  # L1 + frequency terms (the total has KL and GAN)
    assert sum(rec[s] for s in range(41, 51)) < 0.8 * sum(rec[s] for s in range(1, 11))
    psnr = [d["val_psnr"] for d in lines if "val_psnr" in d]
    assert len(psnr) == 2 and psnr[-1] > 10
    from tenku.models.vae import VideoVAE
    from tenku.checkpoint import load_model_config

    vae = VideoVAE(load_model_config(out).vae)
    load_state(vae, out / "vae.safetensors")
    assert not torch.allclose(vae.latent_std, torch.ones_like(vae.latent_std))  # measured, not the defaults
    assert (vae.latent_std > 0).all()
    assert (tmp_path / "checkpoints" / "step_00000050" / "disc.safetensors").is_file()


def test_vae_decoder_fine_tune_keeps_the_latent_space_exactly(tmp_path):
    """vae_train=decoder: the encoder and the latent statistics (what a DiT was trained on) stay bit-identical,
    the decoder changes and its reconstruction loss falls."""
    from tenku.checkpoint import load_model_dir

    base = train(resolve("tiny-test", sets=["steps=10", "lr=1e-2", "warmup_steps=2", "ema_decay=0", "batch_size=2"],
                         task="vae", out=str(tmp_path / "base")), dataset=MovingPatterns(n=6))
    cfg = resolve("tiny-test", sets=["steps=40", "lr=1e-2", "warmup_steps=2", "ema_decay=0", "batch_size=2",
                                     "checkpoint_every=20", "vae_train=decoder"],
                  task="vae", init_from=str(base), out=str(tmp_path / "dec"))
    out = train(cfg, dataset=MovingPatterns(n=6))
    before, after = (load_model_dir(d, ("vae",))[1].state_dict() for d in (base, out))
    enc = [k for k in before if k.startswith("encoder.") or k.startswith("latent_")]
    dec = [k for k in before if k.startswith("decoder.")]
    assert enc and all(torch.equal(before[k], after[k]) for k in enc)
    assert any(not torch.equal(before[k], after[k]) for k in dec)
    rec = [d["rec"] for d in map(json.loads, (tmp_path / "dec" / "metrics.jsonl").read_text().splitlines()) if "rec" in d]
    assert sum(rec[-10:]) < sum(rec[:10])
    with pytest.raises(ValueError, match="vae_train 'decoder' needs"):
        resolve("tiny-test", sets=["vae_train=decoder"], task="vae", out=str(tmp_path / "x"))


def test_vae_export_leaves_the_global_rng_alone(tmp_path):
    """The VAE run's model directory carries a DiT initialised from the run's seed, drawn without reseeding
    the process (library code takes a seed; it does not move the caller's RNG)."""
    from types import SimpleNamespace

    from tenku.checkpoint import load_model_dir, seeded
    from tenku.models.dit import DiT
    from tenku.models.vae import VideoVAE
    from tenku.train.vae_task import VAETask

    cfg = resolve("tiny-test", task="vae", out=str(tmp_path), seed=3)
    mcfg = cfg.model_config()
    with seeded(0):
        weights = VideoVAE(mcfg.vae).state_dict()
    before = torch.get_rng_state()
    VAETask.write_model(SimpleNamespace(cfg=cfg, mcfg=mcfg), tmp_path / "model", weights)
    assert torch.equal(torch.get_rng_state(), before)
    with seeded(3):
        expected = DiT(mcfg.dit).state_dict()
    dit = load_model_dir(tmp_path / "model", ("dit",))[1].state_dict()
    assert all(torch.equal(dit[k], expected[k]) for k in expected)


def test_vae_crop_trains_on_crops(tmp_path, monkeypatch):
    import tenku.train.vae_task as tv

    seen = []
    monkeypatch.setattr(tv, "random_crop", lambda v, size, g: seen.append(size) or random_crop(v, size, g))
    cfg = resolve("tiny-test", sets=["steps=2", "vae_crop=16", "batch_size=2"], task="vae", out=str(tmp_path))
    train(cfg, dataset=MovingPatterns(n=4), val_dataset=MovingPatterns(n=1))
    assert seen == [16, 16]  # one crop per step
    line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert math.isfinite(line["loss"])


# ----------------------------------------------------------------------------- exact resume after kill -9

SCRIPT = DATA + textwrap.dedent('''
    import sys
    from tenku.data.cache import collate_latents
    from tenku.train.loop import train
    from tenku.train.config import resolve
    torch.set_num_threads(1)
    out, delay, resume = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
    cfg = resolve("tiny-test", sets=["steps=24", "checkpoint_every=6", "keep_last=2", "per_frame_t=true"] + sys.argv[4:],
                  task="dit", out=out)
    train(cfg, resume_run=resume, dataset=FixedLatents(delay=delay), collate=collate_latents)
''')


def _run(script, *args, env=None):
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def test_kill_9_and_resume_repeats_the_uninterrupted_losses(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    ref = _run(script, tmp_path / "ref", 0, 0)
    assert ref.returncode == 0, ref.stderr

    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(run), "0.05", "0"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "step_00000012").is_dir():  # two checkpoints landed
        assert proc.poll() is None and time.time() < deadline, "training ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "model").exists()
    killed_at = max(_losses(run))
    assert killed_at < 24

    res = _run(script, run, 0, 1)
    assert res.returncode == 0, res.stderr
    assert "resumed from" in res.stderr
    assert _losses(run) == _losses(tmp_path / "ref")  # every step's loss, bit for bit
    assert (run / "model" / "dit.safetensors").read_bytes() == (tmp_path / "ref" / "model" / "dit.safetensors").read_bytes()

    # A truncated newest checkpoint: a warning, and the run resumes from the one before.
    newest = sorted((run / "checkpoints").iterdir())[-1]
    (newest / "optim_model.safetensors").write_bytes((newest / "optim_model.safetensors").read_bytes()[:100])
    res = _run(script, run, 0, 1, "steps=30")
    assert res.returncode == 0, res.stderr
    assert "skipping unreadable checkpoint" in res.stderr and "optim_model.safetensors" in res.stderr
    assert "resumed from" in res.stderr and "step_00000018" in res.stderr


def test_time_budget_stops_with_a_checkpoint_and_the_clock_resumes(tmp_path):
    # max_train_minutes ends the run like its last step (log, checkpoint, export); train_seconds counts only
    # training steps and continues across a resume.
    cfg = resolve("tiny-test", sets=["steps=50", "checkpoint_every=100", "max_train_minutes=1e-9"], task="dit",
                  out=str(tmp_path))
    with pytest.warns(UserWarning):
        out = train(cfg, dataset=FixedLatents(), collate=collate_latents)
    assert (out / "dit.safetensors").is_file()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_00000001"]
    first = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [d["step"] for d in first] == [1] and first[0]["train_seconds"] > 0
    cfg = resolve("tiny-test", sets=["steps=3", "checkpoint_every=100"], task="dit", out=str(tmp_path))
    with pytest.warns(UserWarning):
        train(cfg, dataset=FixedLatents(), collate=collate_latents, resume_run=True)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    clock = [d["train_seconds"] for d in lines]
    assert [d["step"] for d in lines] == [1, 2, 3] and clock[0] == first[0]["train_seconds"]
    assert clock == sorted(clock) and clock[-1] > clock[0]


def test_worldbench_pass_logs_scores_during_dit_training(tmp_path):
    # worldbench_animate adds the track that animates each scene's true first frame, under its own prefix.
    cfg = resolve("tiny-test", sets=["steps=2", "worldbench_every=2", "worldbench_count=2", "worldbench_steps=1",
                                     "worldbench_mix=uniform", "worldbench_animate=true"], task="dit",
                  out=str(tmp_path))
    with pytest.warns(UserWarning):
        train(cfg, dataset=FixedLatents(), collate=collate_latents)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    wb = [d for d in lines if any(k.startswith("wb/") for k in d)]
    assert len(wb) == 1 and wb[0]["step"] == 2 and wb[0]["train_seconds"] > 0
    assert 0.0 <= wb[0]["wb/color_accuracy"] <= 1.0
    assert len(list((tmp_path / "worldbench" / "step_00000002" / "generated").rglob("*.mp4"))) == 2
    assert 0.0 <= wb[0]["wb_first/direction_accuracy"] <= 1.0 and "wb_first/color_accuracy" in wb[0]
    assert len(list((tmp_path / "worldbench" / "step_00000002-first" / "generated").rglob("*.mp4"))) == 2


def test_same_seed_same_losses_another_seed_others(tmp_path):
    # Both tasks: every random draw (init, data order, t, noise, masks, crops, posterior samples) follows the seed.
    def losses(task, seed, run, **data):
        sets = ["steps=4", f"seed={seed}", "checkpoint_every=100", "batch_size=2"]
        sets += ["vae_crop=16", "cond_probs={none: 1, first: 1, middle: 1}"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(resolve("tiny-test", sets=sets, task=task, out=str(tmp_path / run)), **data)
        return [v for _, v in sorted(_losses(tmp_path / run).items())]

    for task, data in [("dit", dict(dataset=FixedLatents(), collate=collate_latents)),
                       ("vae", dict(dataset=MovingPatterns(n=4), val_dataset=MovingPatterns(n=1)))]:
        a, b, c = (losses(task, seed, f"{task}{i}", **data) for i, seed in enumerate((0, 0, 1)))
        assert len(a) == 4 and a == b, task
        assert all(x != y for x, y in zip(a, c)), task


def test_existing_run_needs_resume(tmp_path):
    cfg = resolve("tiny-test", sets=["steps=2", "checkpoint_every=1"], task="dit", out=str(tmp_path))
    with pytest.warns(UserWarning):
        train(cfg, dataset=FixedLatents(), collate=collate_latents)
    with pytest.raises(ValueError, match="--resume"):
        train(cfg, dataset=FixedLatents(), collate=collate_latents)
    with pytest.raises(ValueError, match="no full batch"):
        train(resolve("tiny-test", sets=["batch_size=16"], task="dit", out=str(tmp_path / "b")),
              dataset=FixedLatents(), collate=collate_latents)


# ----------------------------------------------------------------------------- two processes (gloo)

def _torchrun(script, *args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), *map(str, args)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, so a hang kills the workers too
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun timed out:\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
def test_two_processes_ddp_and_fsdp_agree(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    # fp32 on every CPU: bf16 autocast (DDP) and FSDP's bf16 parameters round differently, so only fp32 can agree
    ddp = _torchrun(script, tmp_path / "ddp", 0, 0, "steps=8", "checkpoint_every=4", "precision=fp32")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    # both ranks checked that their weights are identical (else the run raises); rank 0 recorded the checksum
    assert json.loads((tmp_path / "ddp" / "weights_checksum.json").read_text())["world_size"] == 2
    fsdp = _torchrun(script, tmp_path / "fsdp", 0, 0, "steps=8", "checkpoint_every=4", "strategy=fsdp",
                     "precision=fp32")
    assert fsdp.returncode == 0, fsdp.stderr[-3000:]
    dcp = tmp_path / "fsdp" / "checkpoints" / "step_00000004" / "dcp"
    assert sorted(p.suffix for p in dcp.iterdir()) == [".safetensors", ".safetensors"]  # a shard per rank, no pickle
    from safetensors.torch import load_file

    a = load_file(tmp_path / "ddp" / "model" / "dit.safetensors")
    b = load_file(tmp_path / "fsdp" / "model" / "dit.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # same data split, same updates
    single = _losses(tmp_path / "ddp")
    assert set(single) == set(range(1, 9))

    # FSDP resume through torch.distributed.checkpoint repeats the run
    import shutil

    shutil.rmtree(tmp_path / "fsdp" / "checkpoints" / "step_00000008")
    shutil.rmtree(tmp_path / "fsdp" / "model")
    before = _losses(tmp_path / "fsdp")
    res = _torchrun(script, tmp_path / "fsdp", 0, 1, "steps=8", "checkpoint_every=4", "strategy=fsdp", "precision=fp32")
    assert res.returncode == 0, res.stderr[-3000:]
    assert _losses(tmp_path / "fsdp") == before
    c = load_file(tmp_path / "fsdp" / "model" / "dit.safetensors")
    assert all(torch.equal(b[k], c[k]) for k in b)


def test_world_clips_to_vae_cache_dit_and_generate(tmp_path, monkeypatch):
    """The whole user path on a few tiny Tenku World clips, through the `tenku` command."""
    from tenku.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["world", "make", "--out", "world", "--count", "6", "--height", "32", "--width", "32", "--frames", "9",
                 "--fps", "8", "--workers", "1", "-q"]) == 0
    assert main(["train", "vae", "--data", "world/manifest.jsonl", "--out", "vae", "--steps", "4",
                 "--set", "batch_size=2", "--set", "val_clips=2"]) == 0
    assert main(["cache", "--model", "vae/model", "--manifest", "world/manifest.jsonl", "--out", "cache",
                 "--buckets", "32x32", "--frames", "1", "9", "-q"]) == 0
    assert main(["train", "dit", "--data", "cache", "--vae", "vae/model", "--out", "dit", "--steps", "4",
                 "--set", "sample_every=4"]) == 0
    assert len(list((tmp_path / "dit" / "samples").glob("step_00000004_*.mp4"))) == 1
    assert main(["generate", "a red ball", "--model", "dit/model", "-o", "out.mp4", "-q"]) == 0
    assert (tmp_path / "out.mp4").stat().st_size > 0
    # a DiT whose text width does not match the cache is refused with a clear message
    assert main(["train", "dit", "--data", "cache", "--out", "bad", "--set", "model.dit.text_dim=32"]) == 2


def test_init_from_into_another_patch_size_keeps_the_blocks_and_refreshes_only_patch_layers():
    import dataclasses

    from tenku.config import preset
    from tenku.models.dit import DiT
    from tenku.train.task import PATCH_LAYERS, fresh_patch_layers

    cfg = preset("tiny").dit
    old, new = DiT(cfg), DiT(dataclasses.replace(cfg, patch_size=(1, 1, 1)))
    state = fresh_patch_layers(old.state_dict(), new.state_dict())
    new.load_state_dict(state)
    for k, v in new.state_dict().items():
        assert torch.equal(v, (new if k in PATCH_LAYERS else old).state_dict()[k])
    # Any other mismatch (another width) is not papered over: load_state's shape check still sees it.
    wider = DiT(dataclasses.replace(cfg, dim=2 * cfg.dim, ffn_dim=2 * cfg.ffn_dim))
    kept = fresh_patch_layers(old.state_dict(), wider.state_dict())
    assert kept["blocks.0.ffn.0.weight"].shape == old.state_dict()["blocks.0.ffn.0.weight"].shape
