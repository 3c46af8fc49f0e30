"""Where bf16 pays, and the one switch for it (training's `precision`, the pipeline's `precision`).

"auto" means bf16 autocast (matmuls and attention in bfloat16; weights, gradients, optimizer state and the
sampler's state in fp32) on CUDA and on CPUs that multiply bf16 natively: x86 AVX512-BF16 or AMX, Arm BF16.
Elsewhere the CPU emulates bf16, slower than fp32, so "auto" is fp32 there. On an AVX512-BF16 EPYC a world-xs
DiT training step ran 1.21x faster in bf16, with equal losses and equal WorldBench scores (README, "bf16").
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (x86 "flags", Arm "Features" in /proc/cpuinfo); empty where there is none."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:  # macOS, Windows: no /proc; "auto" stays fp32 there
        return set()
    rows = (line.split(":", 1) for line in lines if ":" in line)
    return {flag for key, value in rows if key.strip() in ("flags", "Features") for flag in value.split()}


def native_bf16(device: torch.device) -> bool:
    """Whether the device multiplies bf16 natively (CUDA, or a CPU with AVX512-BF16, AMX or Arm BF16)."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and bool(cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision == "bf16" or (precision == "auto" and native_bf16(device))


def autocast(device: torch.device, bf16: bool) -> AbstractContextManager:
    """bf16 autocast on the device, or nothing (fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
