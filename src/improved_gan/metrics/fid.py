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
from improved_gan.metrics.files import read_npz, write_npz_atomic


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
        if not torch.isfinite(x).all():
            raise ImprovedGANError("features contain NaN or infinite values; the feature extractor is broken")
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
    """Write reference statistics to ``path`` atomically (.npz: ``mu``, ``sigma``, ``n`` and ``extra``)."""
    return write_npz_atomic(
        path, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64), n=np.int64(n), **extra
    )


def load_statistics(path: str | Path, feature_dim: int | None = None) -> dict[str, np.ndarray]:
    """Read and check a ``.npz`` of reference statistics: ``{"mu", "sigma", "n", ...}`` (pytorch-fid's
    and TTUR's files, which have ``mu`` and ``sigma`` only, load too). See :func:`check_statistics`."""
    path = Path(path)
    return check_statistics(read_npz(path), str(path), feature_dim)


def _real_array(value, origin: str, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise ImprovedGANError(f"{origin}: '{name}' must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ImprovedGANError(
            f"{origin}: '{name}' contains NaN or infinite values; recompute the statistics (--save-reference)"
        )
    return array


def _shown(array: np.ndarray) -> str:
    return repr(array.tolist()) if array.size <= 5 else f"an array of shape {array.shape}"


def _check_count(value, origin: str) -> np.int64:
    n = np.asarray(value)
    if n.dtype.kind not in "iu" or n.size != 1 or int(n.reshape(())) < 2:
        raise ImprovedGANError(
            f"{origin}: 'n' must be one integer >= 2 (the number of images), got {n.tolist()!r}"
        )
    return np.int64(n.reshape(()))


def _check_features(value, origin: str, dim: int) -> np.ndarray:
    features = _real_array(value, origin, "features").astype(np.float32)
    if features.ndim != 2 or features.shape[1] != dim or len(features) < 2:
        raise ImprovedGANError(
            f"{origin}: 'features' must have shape (N >= 2, {dim}) to match 'mu', got {features.shape}"
        )
    return features


def check_statistics(stats: dict, origin: str, feature_dim: int | None = None) -> dict[str, np.ndarray]:
    """``stats`` with ``mu`` (D,) and ``sigma`` (D, D) as finite float64 (``sigma`` symmetric with a
    non-negative diagonal), and the optional ``n`` (≥ 2), ``features`` (N, D) and ``extractor``
    (a name) checked; D must equal ``feature_dim`` when given. ``origin`` names the file."""
    if "mu" not in stats or "sigma" not in stats:
        raise ImprovedGANError(f"{origin} has no 'mu' and 'sigma' arrays; it is not a statistics file")
    mu, sigma = _real_array(stats["mu"], origin, "mu"), _real_array(stats["sigma"], origin, "sigma")
    if mu.ndim != 1 or mu.size == 0 or sigma.shape != (mu.size, mu.size):
        raise ImprovedGANError(
            f"{origin}: mu {mu.shape} and sigma {sigma.shape} do not match; expected (D,) and (D, D)"
        )
    if feature_dim is not None and mu.size != feature_dim:
        raise ImprovedGANError(
            f"{origin} holds statistics of {mu.size} features, but the extractor gives {feature_dim}; "
            "use statistics saved with the same extractor"
        )
    scale = float(np.abs(sigma).max()) if sigma.size else 0.0
    if np.abs(sigma - sigma.T).max() > 1e-6 * scale or np.diagonal(sigma).min() < -1e-9 * scale:
        raise ImprovedGANError(f"{origin}: 'sigma' is not a covariance (asymmetric or negative variances)")
    out = dict(stats, mu=mu, sigma=sigma)
    if "n" in stats:
        out["n"] = _check_count(stats["n"], origin)
    if "features" in stats:
        out["features"] = _check_features(stats["features"], origin, mu.size)
    if "extractor" in stats:
        name = np.asarray(stats["extractor"])
        if name.dtype.kind not in "US" or name.ndim != 0:
            raise ImprovedGANError(f"{origin}: 'extractor' must be one name, got {_shown(name)}")
        out["extractor"] = np.str_(name.item() if name.dtype.kind == "U" else name.item().decode("latin-1"))
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
    if not all(np.isfinite(a).all() for a in (mu1, sigma1, mu2, sigma2)):
        raise ImprovedGANError("FID of statistics with NaN or infinite values; recompute them")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2))


def fid_from_features(features1, features2) -> float:
    """FID of two (N, D) feature arrays (each N ≥ 2)."""
    s1, s2 = FeatureStatistics(), FeatureStatistics()
    s1.update(features1)
    s2.update(features2)
    return frechet_distance(s1.mean(), s1.cov(), s2.mean(), s2.cov())
