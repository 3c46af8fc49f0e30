"""Frechet distance between Gaussian fits of two sets of feature vectors (as FID/FVD, on scene-state features
from detections instead of network activations). numpy only: the matrix square root goes through eigh."""

from __future__ import annotations

import numpy as np


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a, b, eps: float = 1e-6) -> float:
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2) for rows of a (N, D) and b (M, D)."""
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need two sets of >= 2 vectors of one width, got {a.shape} and {b.shape}")
    eye = np.eye(a.shape[1]) * eps
    sa, sb = np.cov(a, rowvar=False) + eye, np.cov(b, rowvar=False) + eye
    ra = _sqrtm_psd(sa)
    cross = np.trace(_sqrtm_psd(ra @ sb @ ra))
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(sa) + np.trace(sb) - 2 * cross)
