"""Core benchmark: DiT training throughput, eager and compiled, against the machine's matmul peak and diffusers' Wan transformer,
the optimizer and EMA update of a training step (`--only optim`), CPU attention kernels by sequence length
(`--only attention`: where tenku/models/attention.py's size limits come from), VAE encode/decode speed, and VAE
decode peak memory for 2 s vs 60 s of video.

    .venv/bin/python bench/core.py            # full table (a few minutes on 2 cores)
    .venv/bin/python bench/core.py --quick    # smaller shapes, fewer repeats

FLOPs are counted by torch.utils.flop_counter on one forward+backward (the same counter for both models),
so "achieved FLOP/s" is counted FLOPs / measured time. Timings are medians of interleaved repeats: the
ratios are what to read on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from tenku.config import DiTConfig, preset
from tenku.models.dit import DiT


def matmul_peak(n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times)


def _compiled(model, enabled: bool, mode: str | None = None):
    return torch.compile(model, mode=mode) if enabled else model


def tenku_step(cfg: DiTConfig, B: int, T: int, H: int, W: int, L: int = 12, compiled: bool = False,
               mode: str | None = None):
    model = DiT(cfg)
    for p in model.parameters():  # non-zero weights so every path does real work
        torch.nn.init.normal_(p, std=0.02)
    x, t = torch.randn(B, cfg.in_channels, T, H, W), torch.rand(B)
    text, mask = torch.randn(B, L, cfg.text_dim), torch.ones(B, L, dtype=torch.bool)
    fwd = _compiled(model, compiled, mode)

    def step():
        fwd(x, t, text, mask).square().mean().backward()
        model.zero_grad(set_to_none=True)

    return step, model.num_tokens(T, H, W) * B


def wan_step(cfg: DiTConfig, B: int, T: int, H: int, W: int, L: int = 12, compiled: bool = False):
    from diffusers import WanTransformer3DModel

    model = WanTransformer3DModel(
        patch_size=cfg.patch_size, num_attention_heads=cfg.num_heads, attention_head_dim=cfg.head_dim,
        in_channels=cfg.in_channels, out_channels=cfg.out_channels, text_dim=cfg.text_dim, freq_dim=cfg.freq_dim,
        ffn_dim=cfg.ffn_dim, num_layers=cfg.num_layers, cross_attn_norm=cfg.cross_attn_norm,
        qk_norm="rms_norm_across_heads", eps=cfg.eps)
    x, t = torch.randn(B, cfg.in_channels, T, H, W), torch.randint(0, 1000, (B,))
    text = torch.randn(B, L, cfg.text_dim)
    fwd = _compiled(model, compiled)

    def step():
        fwd(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0].square().mean().backward()
        model.zero_grad(set_to_none=True)

    return step


def in_bf16(step):
    """The same step under bf16 autocast (matmuls and attention in bfloat16, weights and grads kept fp32): the
    training option `precision: bf16`."""
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            step()
    return run


def count_flops(step) -> int:
    with FlopCounterMode(display=False) as fc:
        step()
    return fc.get_total_flops()


def time_interleaved(steps: dict, repeats: int) -> dict:
    for s in steps.values():
        s()  # warm-up
    times = {k: [] for k in steps}
    for _ in range(repeats):
        for k, s in steps.items():
            t0 = time.perf_counter()
            s()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def dit_shapes(quick: bool, xs_only: bool = False) -> list[tuple[str, DiTConfig, tuple[int, int, int, int]]]:
    """(label, config, latent batch shape B, T', h, w): the default model's training step (batch 16 of 17-frame
    64x64 clips: 5 x 16 x 16 latents), world-s, and one layer of Wan 2.1 1.3B's width."""
    from dataclasses import replace

    xs, s = preset("world-xs").dit, preset("world-s").dit
    wan13 = DiTConfig(dim=1536, ffn_dim=8960, num_heads=12, num_layers=1, in_channels=16, out_channels=16, text_dim=4096)
    if xs_only:  # the default recipe's shape alone (the others take many minutes to compile)
        return [("world-xs train", xs, (4, 5, 16, 16) if quick else (16, 5, 16, 16))]
    if quick:
        return [("world-xs train", xs, (4, 5, 16, 16)), ("world-s", replace(s, num_layers=2), (1, 2, 16, 16))]
    return [("world-xs train", xs, (16, 5, 16, 16)), ("world-s", s, (2, 4, 32, 32)), ("1.3B width, 1 layer", wan13, (1, 2, 16, 16))]


def dit_table(quick: bool, compile_too: bool, bf16: bool, xs_only: bool = False, autotune: bool = False):
    repeats = 2 if quick else 5
    peak = {"fp32": matmul_peak(), "bf16": matmul_peak(dtype=torch.bfloat16) if bf16 else 0.0}
    print(f"\nDiT forward+backward, text 12 tokens; 'compiled' = torch.compile (inductor), timed after its warm-up;"
          f" 'bf16' = bf16 autocast (fp32 weights); FLOPs counted once per shape (the same for every variant);"
          f" 'of peak' = of the 2048x2048 matmul peak in the variant's own dtype")
    print(f"{'shape':<22}{'model':<30}{'tokens':>7}{'s/step':>9}{'GFLOP/s':>9}{'of peak':>9}{'vs Wan eager':>13}")
    for label, cfg, (B, T, H, W) in dit_shapes(quick, xs_only):
        step_t, tokens = tenku_step(cfg, B, T, H, W)
        steps = {"tenku eager": step_t, "diffusers Wan eager": wan_step(cfg, B, T, H, W)}
        if compile_too:
            steps["tenku compiled"] = tenku_step(cfg, B, T, H, W, compiled=True)[0]
            steps["diffusers Wan compiled"] = wan_step(cfg, B, T, H, W, compiled=True)
        if bf16:
            steps["tenku eager bf16"] = in_bf16(tenku_step(cfg, B, T, H, W)[0])
            steps["diffusers Wan eager bf16"] = in_bf16(wan_step(cfg, B, T, H, W))
            if compile_too:
                steps["tenku compiled bf16"] = in_bf16(tenku_step(cfg, B, T, H, W, compiled=True)[0])
            if compile_too and autotune:  # inductor tries its own GEMM kernels against ATen's, keeps the fastest
                steps["tenku autotuned bf16"] = in_bf16(
                    tenku_step(cfg, B, T, H, W, compiled=True, mode="max-autotune-no-cudagraphs")[0])
        flops = count_flops(step_t)
        secs = time_interleaved(steps, repeats)
        # measured around the run, best of all
        peak = {k: max(v, matmul_peak(dtype=torch.bfloat16 if k == "bf16" else torch.float32)) if v else v
                for k, v in peak.items()}
        for name, sec in secs.items():
            own = peak["bf16" if name.endswith("bf16") else "fp32"]
            print(f"{label:<22}{name:<30}{tokens:>7}{sec:>9.3f}{flops / sec / 1e9:>9.1f}{flops / sec / own:>9.0%}"
                  f"{secs['diffusers Wan eager'] / sec:>12.2f}x")
    print("plain 2048x2048 matmul peak (best of the same run): "
          + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peak.items() if v))


def optimizer_table(quick: bool):
    """The rest of a training step: AdamW over the default model's parameters (per-tensor loop, PyTorch's CPU
    default; foreach; fused, one kernel) and the EMA update, with fixed random gradients."""
    from tenku.models.dit import DiT
    from tenku.train.ema import ema_copy, ema_update

    dit = DiT(preset("world-xs").dit)
    params = list(dit.parameters())
    for q in params:
        q.grad = torch.randn_like(q) * 1e-3
    ema = ema_copy(dit)
    steps = {f"AdamW {kind}": torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.99), **kw).step
             for kind, kw in [("loop (CPU default)", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})]}
    steps["EMA update"] = lambda: ema_update(ema, dit, 0.995)
    secs = time_interleaved(steps, 10 if quick else 50)
    print(f"\nOptimizer and EMA, world-xs DiT ({len(params)} tensors, {sum(q.numel() for q in params) / 1e6:.1f}M"
          " parameters), ms per step (median):")
    for name, sec in secs.items():
        print(f"{name:<24}{sec * 1e3:>8.2f}{secs['AdamW loop (CPU default)'] / sec:>8.2f}x")


def profile_table(quick: bool):
    """Where the default recipe's training step spends its time: torch.profiler over 3 compiled bf16 world-xs steps
    (batch 16 x 80 tokens, what training runs on a CPU with native bf16), ops by their own CPU time. Run with
    PYTHONPATH=<another checkout> to profile that tree's model."""
    from torch.profiler import ProfilerActivity, profile

    B, T, H, W = dit_shapes(quick, xs_only=True)[0][2]
    step = in_bf16(tenku_step(preset("world-xs").dit, B, T, H, W, compiled=True)[0])
    for _ in range(3):  # compile and warm up
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    print(f"\nProfile of 3 compiled bf16 world-xs training steps (batch {B} x {T} x {H} x {W} latents), by self CPU time")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=60))


def attention_table(quick: bool):
    """Attention forward+backward at the DiT's head size (64), scaled_dot_product_attention (the CPU flash kernel)
    against plain matmuls and a softmax, by sequence length; about the same FLOPs per row (fewer heads x batch as
    N grows, at least 2); the last column is what tenku.models.attention.attention runs at that size when gradients
    are on (fp32 inference in eager mode always takes sdpa)."""
    from tenku.models.attention import EXPLICIT_ATTENTION_MAX, explicit_attention

    def step(fn, q, k, v):
        def run():
            qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
            fn(qq, kk, vv).float().square().mean().backward()
        return run

    print("\nAttention forward+backward on the CPU, head dim 64, self-attention N = L, ms per call (median)")
    print(f"{'dtype':<10}{'N':>6}{'B x heads':>10}{'sdpa':>9}{'explicit':>10}{'sdpa/explicit':>15}  attention() runs")
    for dtype in (torch.float32, torch.bfloat16):
        for n in (16, 80, 128, 256, 512, 1024) if not quick else (80, 256):
            bh = max(2, 64 * 80 * 80 // (n * n))
            q, k, v = (torch.randn(bh, 1, n, 64, dtype=dtype) for _ in range(3))
            secs = time_interleaved({"sdpa": step(torch.nn.functional.scaled_dot_product_attention, q, k, v),
                                     "explicit": step(explicit_attention, q, k, v)}, 3 if quick else 9)
            picks = "explicit" if n * n <= EXPLICIT_ATTENTION_MAX[dtype] else "sdpa"  # with gradients
            print(f"{str(dtype).removeprefix('torch.'):<10}{n:>6}{bh:>10}{secs['sdpa'] * 1e3:>9.2f}"
                  f"{secs['explicit'] * 1e3:>10.2f}{secs['sdpa'] / secs['explicit']:>14.2f}x  {picks}")


def sampler_attention_rows(quick: bool, compile_too: bool):
    """The world-xs DiT's forward at the sampler's shape (a guidance pair: batch 2, 80 tokens, 12 text tokens), under
    inference mode, with tenku.models.attention.attention against scaled_dot_product_attention swapped in (the
    module's global; dynamo keeps a graph per choice), interleaved in one process."""
    import tenku.models.dit as dit_module
    from tenku.models.attention import attention

    def sdpa(q, k, v, mask=None):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    torch.manual_seed(0)
    model = DiT(preset("world-xs").dit).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    x, t = torch.randn(2, 8, 5, 16, 16), torch.rand(2)
    text, mask = torch.randn(2, 12, 384), torch.ones(2, 12, dtype=torch.bool)
    mask[0, 8:] = False

    def call(net, bf16, fn):
        def run():
            dit_module.attention = fn
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                net(x, t, text, mask)
        return run

    nets = {"eager": model} | ({"compiled": torch.compile(model)} if compile_too else {})
    steps = {(mode, prec, name): call(net, prec == "bf16", fn) for mode, net in nets.items() for prec in ("fp32", "bf16")
             for name, fn in (("sdpa", sdpa), ("attention()", attention))}
    try:
        secs = time_interleaved(steps, 5 if quick else 30)
    finally:
        dit_module.attention = attention
    print("\nThe world-xs DiT forward at the sampler's shape (batch 2, 80 tokens), inference, ms (median, interleaved)")
    print(f"{'mode':<10}{'precision':<10}{'sdpa':>9}{'attention()':>13}{'sdpa/attention()':>18}")
    for mode in nets:
        for prec in ("fp32", "bf16"):
            a, b = secs[(mode, prec, "sdpa")], secs[(mode, prec, "attention()")]
            print(f"{mode:<10}{prec:<10}{a * 1e3:>9.2f}{b * 1e3:>13.2f}{a / b:>17.2f}x")


VAE_CHILD = r"""
import json, os, sys, threading, time, torch
from tenku.config import preset
from tenku.models.vae import VideoVAE

def rss():  # resident set size in bytes, read from /proc
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

torch.manual_seed(0)
vae = VideoVAE(preset(sys.argv[3]).vae).eval()
lat_frames, size = int(sys.argv[1]), int(sys.argv[2])
z = torch.randn(1, vae.cfg.latent_channels, lat_frames, size // 8, size // 8)
with torch.inference_mode():
    next(iter(vae.iter_decode(z[:, :, :2])))  # warm-up: allocator pools, kernels
base, peak, done = rss(), [0], threading.Event()

def watch():  # sample RSS while decoding; the peak minus the start is the decode's working memory
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)

threading.Thread(target=watch, daemon=True).start()
frames = 0
t0 = time.perf_counter()
with torch.inference_mode():
    for chunk in vae.iter_decode(z):  # frames stream out; nothing accumulates
        frames += chunk.shape[2]
dt = time.perf_counter() - t0
done.set()
print(json.dumps({"frames": frames, "seconds": dt, "extra_mib": (max(peak[0], rss()) - base) / 2**20}))
"""


def vae_train_rows(bf16: bool):
    """The world-xs VAE's training step (encode, decode, reconstruction loss, backward) in fp32 and, with bf16,
    under bf16 autocast: what `precision: auto` picks on a CPU with native bf16."""
    from tenku.models.vae import VideoVAE

    vae = VideoVAE(preset("world-xs").vae)
    video = torch.rand(4, 3, 9, 64, 64) * 2 - 1  # (B, C, T, H, W): a training batch of 9-frame clips

    def step():
        recon = vae.decode(vae.encode(video).sample())  # (B, C, T, H, W)
        (recon.float() - video).abs().mean().backward()

    steps = {"fp32": step, **({"bf16": in_bf16(step)} if bf16 else {})}
    secs = time_interleaved(steps, 3)
    print(f"\nVAE training step (world-xs preset, batch 4 x 9 x 64 x 64, encode + decode + L1 + backward)")
    print(f"{'precision':<10}{'s/step':>9}{'vs fp32':>9}")
    for k, v in secs.items():
        print(f"{k:<10}{v:>9.3f}{secs['fp32'] / v:>8.2f}x")


def vae_table(quick: bool, bf16: bool, compile_too: bool = True):
    from tenku.models.vae import VideoVAE

    vae = VideoVAE(preset("world-s").vae).eval()
    size, frames = 64, 17
    video = torch.rand(1, 3, frames, size, size) * 2 - 1
    with torch.inference_mode():
        z = vae.encode(video).mode()
        ops = {"encode": lambda: vae.encode(video), "encode, whole clip": lambda: vae.encode(video, chunked=False),
               "decode": lambda: vae.decode(z), "decode, whole clip": lambda: vae.decode(z, chunked=False)}
        if compile_too:
            encode_whole = torch.compile(lambda v: vae.encode(v, chunked=False).mode())
            decode_whole = torch.compile(lambda z: vae.decode(z, chunked=False))
            ops |= {"encode, whole, compiled": lambda: encode_whole(video), "decode, whole, compiled": lambda: decode_whole(z)}
        secs = time_interleaved(ops, 2 if quick else 5)
    print(f"\nVAE (world-s preset, {size}x{size}, {frames} frames, fp32, inference; encode and decode go chunk by chunk"
          " in constant memory; 'whole clip' in one pass, as the pipeline decodes clips up to WHOLE_DECODE_PIXELS;"
          " 'compiled' = torch.compile (inductor) of the whole-clip pass, timed after its warm-up)")
    print(f"{'op':<26}{'s/clip':>9}{'frames/s':>10}")
    for k, s in secs.items():
        print(f"{k:<26}{s:>9.3f}{frames / s:>10.1f}")
    vae_train_rows(bf16)
    print("\nVAE decode working memory (world-s, streamed with iter_decode; a fresh process each, 8 fps;")
    print("peak resident memory during decode minus before it, sampled every 2 ms)")
    print(f"{'video':<8}{'frames':>8}{'seconds':>9}{'extra RSS MiB':>15}")
    for seconds in (2, 60):
        lat = 1 + (seconds * 8) // 4
        out = subprocess.run([sys.executable, "-c", VAE_CHILD, str(lat), str(size), "world-s"], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{seconds:>4} s  {r['frames']:>8}{r['seconds']:>9.2f}{r['extra_mib']:>15.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller shapes and fewer repeats")
    ap.add_argument("--only", choices=["dit", "optim", "attention", "vae"], help="run one table")
    ap.add_argument("--no-compile", action="store_true", help="eager only (compiling takes minutes on a CPU)")
    ap.add_argument("--no-bf16", action="store_true", help="fp32 only (no bf16 autocast rows)")
    ap.add_argument("--xs-only", action="store_true", help="the DiT table at the default recipe's shape alone")
    ap.add_argument("--profile", action="store_true",
                    help="only the torch.profiler table of the default recipe's compiled bf16 training step")
    ap.add_argument("--autotune", action="store_true",
                    help="DiT table: also Tenku compiled with mode max-autotune-no-cudagraphs, in bf16")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.profile:
        return profile_table(args.quick)
    if args.only in (None, "dit"):
        dit_table(args.quick, not args.no_compile, not args.no_bf16, args.xs_only, args.autotune)
    if args.only in (None, "optim"):
        optimizer_table(args.quick)
    if args.only in (None, "attention"):
        attention_table(args.quick)
        sampler_attention_rows(args.quick, not args.no_compile)
    if args.only in (None, "vae"):
        vae_table(args.quick, not args.no_bf16, not args.no_compile)


if __name__ == "__main__":
    main()
