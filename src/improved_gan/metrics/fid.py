"""Fréchet Inception Distance (Heusel et al. 2017) from streaming float64 feature statistics.

FID = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^{1/2}, with μ, Σ the mean and covariance
(ddof = 1, as ``np.cov`` in the TTUR / pytorch-fid / torch-fidelity code) of the features:
Inception pool3 (2048) for the reference pipeline, or a dataset classifier's penultimate layer.

:class:`FeatureStatistics` accumulates μ and Σ batch by batch (Chan et al.'s pairwise update in
float64), so 50,000 samples never need all their features in memory. Reference statistics are
saved to and loaded from ``.npz`` files with arrays ``mu`` (D,), ``sigma`` (D, D) and ``n``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from improved_gan.errors import ImprovedGANError


class FeatureStatistics:
    """Running mean and covariance of (B, D) feature batches, in float64.

    Memory O(D²) whatever the number of samples; :meth:`mean` and :meth:`cov` equal
    ``features.mean(0)`` and ``np.cov(features, rowvar=False)`` of the concatenated batches.
    """

    def __init__(self) -> None:
        self.n = 0
        self._mean: torch.Tensor | None = None
        self._m2: torch.Tensor | None = None  # Σ (x − mean)(x − mean)ᵀ

    def update(self, features) -> None:
        x = torch.as_tensor(features).detach().to("cpu", torch.float64)
        if x.dim() != 2:
            raise ImprovedGANError(f"features must be 2-D (N, D), got shape {tuple(x.shape)}")
        b = x.shape[0]
        if b == 0:
            return
        batch_mean = x.mean(0)
        centred = x - batch_mean
        batch_m2 = centred.T @ centred
        if self._mean is None:
            self.n, self._mean, self._m2 = b, batch_mean, batch_m2
            return
        if x.shape[1] != self._mean.shape[0]:
            raise ImprovedGANError(f"feature size changed from {self._mean.shape[0]} to {x.shape[1]}")
        n = self.n + b
        delta = batch_mean - self._mean
        self._mean = self._mean + delta * (b / n)
        self._m2 = self._m2 + batch_m2 + torch.outer(delta, delta) * (self.n * b / n)
        self.n = n

    def mean(self) -> np.ndarray:
        if self._mean is None:
            raise ImprovedGANError("no features were accumulated")
        return self._mean.numpy()

    def cov(self) -> np.ndarray:
        if self._m2 is None or self.n < 2:
            raise ImprovedGANError(f"a covariance needs at least 2 samples, got {self.n}")
        return (self._m2 / (self.n - 1)).numpy()


def save_statistics(path: str | Path, mu: np.ndarray, sigma: np.ndarray, n: int, **extra) -> Path:
    """Write reference statistics to ``path`` (.npz: ``mu``, ``sigma``, ``n`` and ``extra``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64), n=np.int64(n), **extra)
    tmp.replace(path)
    return path


def load_statistics(path: str | Path) -> dict[str, np.ndarray]:
    """Read a ``.npz`` of reference statistics: ``{"mu", "sigma", "n", ...}`` (pytorch-fid's and
    TTUR's files, which have ``mu`` and ``sigma`` only, load too)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ImprovedGANError(f"cannot read reference statistics {path}: {exc}") from exc
    if "mu" not in out or "sigma" not in out:
        raise ImprovedGANError(f"{path} has no 'mu' and 'sigma' arrays; it is not a statistics file")
    mu, sigma = out["mu"], out["sigma"]
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ImprovedGANError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not match")
    return out


def _sqrt_psd(a: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative rounding
    noise in the eigenvalues is clipped to 0)."""
    vals, vecs = torch.linalg.eigh((a + a.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def trace_sqrt_product(sigma1, sigma2) -> float:
    """tr (Σ₁ Σ₂)^{1/2} = Σ √λ(Σ₁^{1/2} Σ₂ Σ₁^{1/2}) in float64: the second matrix is symmetric
    PSD with the same eigenvalues as Σ₁ Σ₂, so ``eigh`` suffices (no scipy ``sqrtm``)."""
    s1 = torch.as_tensor(np.asarray(sigma1), dtype=torch.float64)
    s2 = torch.as_tensor(np.asarray(sigma2), dtype=torch.float64)
    root = _sqrt_psd(s1)
    middle = root @ s2 @ root
    vals = torch.linalg.eigvalsh((middle + middle.T) / 2)
    return float(vals.clamp(min=0).sqrt().sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^{1/2} (float64)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ImprovedGANError(
            f"FID of features of different sizes: {mu1.shape} vs {mu2.shape}; use the same extractor for both"
        )
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2))


def fid_from_features(features1, features2) -> float:
    """FID of two (N, D) feature arrays (each N ≥ 2)."""
    s1, s2 = FeatureStatistics(), FeatureStatistics()
    s1.update(features1)
    s2.update(features2)
    return frechet_distance(s1.mean(), s1.cov(), s2.mean(), s2.cov())
