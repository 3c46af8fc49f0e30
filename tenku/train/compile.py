"""torch.compile (inductor) for training, on where it can work and a clean fallback where it cannot.

Inductor turns the DiT's elementwise work around the matmuls (modulation, rotary embeddings, norms, GELU)
into fused kernels: on the CPU it writes C++ and needs a C compiler, so "auto" compiles only where one is on
PATH (CUDA needs none beyond Triton). If compiling still fails on the first call, the model runs eagerly
from then on, with a warning: a run never dies because a compiler is missing or broken.
"""

from __future__ import annotations

import shutil
import warnings

import torch
import torch.nn as nn

MODES = ("auto", "on", "off")


def compiler_available(device: torch.device) -> bool:
    """Whether inductor can build kernels here: a C/C++ compiler for the CPU, Triton for CUDA."""
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return False
        return True
    return any(shutil.which(cc) for cc in ("cc", "gcc", "clang", "c++", "g++"))


def wants_compile(mode: str, device: torch.device) -> bool:
    if mode not in MODES:
        raise ValueError(f"compile must be one of {list(MODES)}, got {mode!r}")
    return mode == "on" or (mode == "auto" and compiler_available(device))


class MaybeCompiled(nn.Module):
    """Calls `torch.compile(module)`; if the first compiled call fails, warns and calls `module` eagerly.

    The compiled module shares the eager one's parameters, so the optimizer, EMA and checkpoints never see
    the wrapper (save and load `module`, not this).
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.compiled = torch.compile(module)
        self.ok: bool | None = None  # None until the first call tells

    def forward(self, *args, **kwargs):
        if self.ok is False:
            return self.module(*args, **kwargs)
        try:
            out = self.compiled(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any compiler failure means: run eagerly
            if self.ok:  # it worked before, so this is a real error in the model, not the compiler
                raise
            warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                          "running eagerly from now on", stacklevel=2)
            self.ok = False
            return self.module(*args, **kwargs)
        self.ok = True
        return out


def maybe_compile(module: nn.Module, mode: str, device: torch.device) -> nn.Module:
    return MaybeCompiled(module) if wants_compile(mode, device) else module
