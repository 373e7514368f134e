"""Fréchet distance between feature statistics (FID when the features are Inception's).

Statistics stream: ``FeatureStats.update`` folds in one batch at a time in float64 (Chan's
pairwise merge of mean and scatter), so a set of any size needs O(D²) memory and the result does
not depend on the order of the samples beyond rounding.

FID = |mu1 - mu2|² + tr(S1) + tr(S2) - 2 tr((S1 S2)^½). S1 S2 is not symmetric, but it is similar to
the PSD matrix S1^½ S2 S1^½, which has the same eigenvalues; taking square roots of those
(clipped at 0) gives the trace without a complex-valued general matrix square root.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import UserError


@dataclass
class FeatureStats:
    """Running mean and scatter of D-dimensional features. ``cov`` is unbiased (ddof=1, like np.cov)."""

    dim: int
    count: int = 0
    mean: np.ndarray = field(default=None, repr=False)
    scatter: np.ndarray = field(default=None, repr=False)   # sum of (x - mean)(x - mean)^T

    def __post_init__(self):
        if self.mean is None:
            self.mean = np.zeros(self.dim, dtype=np.float64)
        if self.scatter is None:
            self.scatter = np.zeros((self.dim, self.dim), dtype=np.float64)

    def update(self, features: torch.Tensor | np.ndarray) -> "FeatureStats":
        """Fold in a batch: features [N, D]."""
        x = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else \
            np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"features must be [N, {self.dim}], got {list(x.shape)}")
        n = x.shape[0]
        if n == 0:
            return self
        batch_mean = x.mean(axis=0)
        centred = x - batch_mean
        total = self.count + n
        delta = batch_mean - self.mean
        self.scatter += centred.T @ centred + np.outer(delta, delta) * (self.count * n / total)
        self.mean += delta * (n / total)
        self.count = total
        return self

    @property
    def cov(self) -> np.ndarray:
        if self.count < 2:
            raise UserError(f"feature statistics need at least 2 samples, have {self.count}")
        return self.scatter / (self.count - 1)


def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Principal square root of a symmetric positive semi-definite matrix: [D, D] → [D, D].

    Eigenvalues below zero (rounding noise of a PSD matrix) are clipped to zero."""
    a = np.asarray(a, dtype=np.float64)
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr((s1 s2)^½) for symmetric PSD s1, s2, via the PSD matrix s1^½ s2 s1^½."""
    r = sqrtm_psd(s1)
    m = r @ np.asarray(s2, dtype=np.float64) @ r
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, s1) and N(mu2, s2): mu [D], s [D, D]. Always ≥ 0 (up to rounding)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    if mu1.shape != mu2.shape or np.shape(s1) != np.shape(s2):
        raise UserError(f"feature statistics differ in size: {mu1.shape[0]} vs {mu2.shape[0]} features")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt_product(s1, s2)
    return float(max(value, 0.0))


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)
