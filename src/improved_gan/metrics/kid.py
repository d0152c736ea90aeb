"""Kernel Inception Distance (Bińkowski et al. 2018), as torch-fidelity and the KID paper's code
compute it: the unbiased MMD² estimate with the cubic polynomial kernel
k(x, y) = (xᵀy / D + 1)³, averaged over ``subsets`` random subsets of ``subset_size`` samples drawn
without replacement from each side (``numpy.random.RandomState(seed).choice``); returns
(mean, population std) over subsets.

KID needs the features themselves (N × D float32), not only their moments.
"""

from __future__ import annotations

import numpy as np
import torch

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.checks import check_int


def polynomial_kernel(
    x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
):
    """(xᵀy·γ + c)^d for (N, D) × (M, D) -> (N, M); γ = 1/D by default."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(x, y, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> float:
    """Unbiased MMD² between samples x (m, D) and y (m, D) with the polynomial kernel, float64:
    (Σ_{i≠j} k(x_i,x_j) + Σ_{i≠j} k(y_i,y_j)) / (m(m−1)) − 2 Σ_{i,j} k(x_i,y_j) / m²."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise ImprovedGANError(
            f"MMD² needs two samples of the same size ≥ 2, got {x.shape[0]} and {y.shape[0]}"
        )
    k_xx = polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef0)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    features1,
    features2,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 2020,
) -> tuple[float, float]:
    """(mean, population std) of MMD² over random subsets (torch-fidelity's defaults)."""
    f1, f2 = np.asarray(features1), np.asarray(features2)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ImprovedGANError(
            f"KID needs two (N, D) feature arrays of the same D, got {f1.shape} and {f2.shape}"
        )
    if not (np.isfinite(f1).all() and np.isfinite(f2).all()):
        raise ImprovedGANError("KID of features with NaN or infinite values; the feature extractor is broken")
    check_int(subsets, "kid_subsets", 1, 100)
    check_int(subset_size, "kid_subset_size", 2, 1000)
    n = min(len(f1), len(f2))
    if subset_size > n:
        raise ImprovedGANError(
            f"KID subset size {subset_size} exceeds the number of samples ({len(f1)} and {len(f2)}); "
            f"pass --kid-subset-size {max(2, n)} or fewer, or give more samples"
        )
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        a = f1[rng.choice(len(f1), subset_size, replace=False)]
        b = f2[rng.choice(len(f2), subset_size, replace=False)]
        values.append(mmd2_unbiased(a, b, degree, gamma, coef0))
    return float(np.mean(values)), float(np.std(values))
