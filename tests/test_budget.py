"""The memory estimate every request passes before anything is allocated (tenku/budget.py)."""

import subprocess
import sys

import pytest

from tenku.budget import check_budget, estimate_bytes
from tenku.config import preset


def test_estimate_grows_with_every_dimension():
    cfg = preset("world-xs")
    base = estimate_bytes(cfg, 17, 64, 64)
    assert estimate_bytes(cfg, 33, 64, 64) > base and estimate_bytes(cfg, 17, 128, 64) > base
    assert estimate_bytes(cfg, 17, 64, 128) > base and estimate_bytes(cfg, 17, 64, 64, given_frames=17) > base


def test_wan_480p_five_seconds_fits_a_24_gb_card():
    # Self-attention is not counted as N^2 scores (below); 81 x 832x480 on Wan 2.1 1.3B is about 19 GB.
    need = estimate_bytes(preset("wan-1.3b"), 81, 480, 832)
    assert 15 * 2**30 < need < 0.8 * 24 * 2**30


def test_unmasked_attention_does_not_materialise_its_scores():
    # What the estimate relies on: SDPA without a mask runs fused here (a fresh process, so its peak is its own).
    code = ("import resource, torch, torch.nn.functional as F; torch.set_num_threads(1); "
            "q = torch.randn(1, 4, 8192, 64); k, v = torch.randn_like(q), torch.randn_like(q); "
            "r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            "F.scaled_dot_product_attention(q, k, v); "
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r) / 1024)")
    grown_mb = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert grown_mb < 0.25 * 4 * 8192 * 8192 * 4 / 2**20  # the scores would be 1,024 MB


def test_over_budget_is_refused_with_both_figures():
    with pytest.raises(ValueError, match=r"need about .* GB .* more than the 0\.0 GB allowed"):
        check_budget(preset("world-xs"), 17, 64, 64, budget=1)
