"""Exact divergences between minibatch (product) distributions of small discrete distributions.

Minibatch discrimination (Salimans et al. 2016, section 3.2) lets the discriminator look at a whole
minibatch of N samples, so the divergence a GAN minimises becomes one between the product
distributions P^N and Q^N. For i.i.d. batches

* KL(P^N ‖ Q^N) = N · KL(P ‖ Q): a KL-minimising GAN keeps its optimum and its shape;
* JS(P^N ‖ Q^N) ≤ min(N · JS(P ‖ Q), log 2) and JS(P^N ‖ Q^N) / N is non-increasing in N: the
  JS-based GAN changes its objective as N grows (the tails flatten towards log 2).

Both are computed exactly here. P^N(x_1..x_N) = Π_k p_k^{c_k} depends on a sequence only through its
count vector c (c_k = #{i: x_i = k}, Σ_k c_k = N), and the C(N+K-1, K-1) count vectors carry the
multinomial weights N! / Π_k c_k!, so every sum over the K^N sequences becomes a sum over count
vectors. Everything is evaluated from log-probabilities, and each summand is written as a
non-negative quantity, so that nothing cancels:

* KL:  Σ_x a log(a/b) = Σ_x [a log(a/b) - a + b] = Σ_x a · φ(log b - log a),  φ(t) = e^t - 1 - t ≥ 0;
* JS:  ½ Σ_x [a log(2a/(a+b)) + b log(2b/(a+b))] = ½ Σ_x (a+b) · g(½ (log a - log b)),
  g(u) = u tanh u - log cosh u = KL(Bernoulli(σ(2u)) ‖ Bernoulli(½)) ≥ 0,

with a = P^N(x), b = Q^N(x). The adversarial preference divergence of the same analysis compares
P × Q with Q × P (a pair of one real and one generated sample, against the swapped pair), here also
for minibatches: d(P^N × Q^N ‖ Q^N × P^N), summed over pairs of count vectors.

Distributions are 1-D arrays of probabilities over K symbols; a scalar p means Bernoulli(p), that is
the vector (1 - p, p). Results are in nats, or in bits with ``unit="bits"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np

from improved_gan.errors import ImprovedGANError

Unit = Literal["nats", "bits"]
ArrayLike = float | Sequence[float] | np.ndarray

#: Largest number of summands (count vectors, or pairs of them) computed in one call.
MAX_TERMS = 20_000_000

_LOG2 = math.log(2.0)


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------
def as_distribution(p: ArrayLike, name: str = "p") -> np.ndarray:
    """Validate a categorical distribution; a scalar ``p`` means Bernoulli(p) = (1 - p, p)."""
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.array([1.0 - float(arr), float(arr)])
    if arr.ndim != 1 or arr.size == 0:
        raise ImprovedGANError(
            f"{name} must be a probability or a 1-D vector of probabilities, got shape "
            f"{arr.shape}; pass e.g. 0.2 or [0.1, 0.9]"
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ImprovedGANError(
            f"{name} has negative or non-finite entries ({arr.tolist()}); probabilities must lie in [0, 1]"
        )
    total = float(arr.sum())
    if abs(total - 1.0) > 1e-9:
        raise ImprovedGANError(f"{name} sums to {total!r}, not 1; normalise it (p / p.sum())")
    return arr / total


def _check_pair(p: ArrayLike, q: ArrayLike, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    pv, qv = as_distribution(p, "p"), as_distribution(q, "q")
    if pv.shape != qv.shape:
        raise ImprovedGANError(f"p has {pv.size} symbols but q has {qv.size}; both must be over the same K")
    if isinstance(n, bool) or int(n) != n or int(n) < 1:
        raise ImprovedGANError(f"batch size n must be a positive integer, got {n!r}")
    return pv, qv, int(n)


def num_count_vectors(n: int, k: int) -> int:
    """Number of count vectors of n samples over k symbols: C(n + k - 1, k - 1)."""
    return math.comb(n + k - 1, k - 1)


def _check_size(terms: int, what: str) -> None:
    if terms > MAX_TERMS:
        raise ImprovedGANError(
            f"{what} needs {terms:,} terms (more than {MAX_TERMS:,}); "
            "use a smaller batch size n or fewer symbols K"
        )


# --------------------------------------------------------------------------------------------------
# Count vectors and their log-probabilities
# --------------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _count_vectors(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """All count vectors c ∈ ℕ^k with Σ c = n, shape (C(n+k-1, k-1), k), and log(n! / Π_k c_k!)."""
    rows = np.zeros((1, 0), dtype=np.int64)
    used = np.zeros(1, dtype=np.int64)
    for _ in range(k - 1):
        reps = n - used + 1  # the next count ranges over 0 .. n - used
        idx = np.repeat(np.arange(rows.shape[0]), reps)
        nxt = np.arange(idx.size) - np.repeat(np.cumsum(reps) - reps, reps)
        rows = np.column_stack([rows[idx], nxt])
        used = used[idx] + nxt
    counts = np.column_stack([rows, n - used])
    log_fact = np.array([math.lgamma(i + 1.0) for i in range(n + 1)])
    log_weight = log_fact[n] - log_fact[counts].sum(axis=1)
    counts.setflags(write=False)
    log_weight.setflags(write=False)
    return counts, log_weight


def _log_prob_of_counts(counts: np.ndarray, p: np.ndarray) -> np.ndarray:
    """log Π_k p_k^{c_k} for each count vector (row of ``counts``), with 0^0 = 1 and log 0 = -inf."""
    support = p > 0
    out = counts[:, support] @ np.log(p[support])
    if not np.all(support):
        out[counts[:, ~support].sum(axis=1) > 0] = -np.inf
    return out


# --------------------------------------------------------------------------------------------------
# Stable summands
# --------------------------------------------------------------------------------------------------
def _phi(t: np.ndarray) -> np.ndarray:
    """φ(t) = e^t - 1 - t ≥ 0 for finite t, with a Taylor series where expm1(t) - t would cancel."""
    out = np.empty_like(t)
    small = np.abs(t) < 0.1
    ts = t[small]
    series = np.zeros_like(ts)
    term = ts.copy()
    for j in range(2, 14):  # Σ_{j≥2} t^j / j!, truncation error < 0.1^12 / 14! relative
        term = term * ts / j
        series += term
    out[small] = series
    tl = t[~small]
    out[~small] = np.expm1(tl) - tl
    return out


def _g(u: np.ndarray) -> np.ndarray:
    """g(u) = u tanh u - log cosh u for u ≥ 0 (even in u), each branch without catastrophic cancellation.

    For u ≤ 1: log cosh u = log1p(2 sinh²(u/2)), and both terms are ~u², so at most a factor 2 cancels.
    For u > 1: g(u) = log 2 - log1p(e^{-2u}) - 2u e^{-2u} / (1 + e^{-2u}), which tends to log 2.
    """
    u = np.abs(u)
    out = np.full_like(u, _LOG2)  # the limit u → ∞ (one of a, b is zero)
    small = u <= 1.0
    us = u[small]
    out[small] = us * np.tanh(us) - np.log1p(2.0 * np.sinh(0.5 * us) ** 2)
    large = ~small & np.isfinite(u)
    e = np.exp(-2.0 * u[large])
    out[large] = _LOG2 - np.log1p(e) - 2.0 * u[large] * e / (1.0 + e)
    return out


def _kl_sum(log_w: np.ndarray, log_a: np.ndarray, log_b: np.ndarray) -> float:
    """Σ w · a · log(a/b) over cells with weights w, from logs; +inf if a > 0 where b = 0."""
    a_pos = np.isfinite(log_a)
    if np.any(a_pos & ~np.isfinite(log_b)):
        return math.inf
    total = 0.0
    # cells with a = 0 contribute w·b (the "+ b" of a·φ), cells with a > 0 contribute w·a·φ(log b - log a)
    total += float(np.exp(log_w[~a_pos] + log_b[~a_pos]).sum())
    la, lb, lw = log_a[a_pos], log_b[a_pos], log_w[a_pos]
    t = lb - la
    big = t > 1.0  # a·φ(t) = b - a - a·t: no overflow of e^t; b ≥ 1.3 (a + a·t) here, so little cancels
    total += float((np.exp(lw[big] + lb[big]) - np.exp(lw[big] + la[big]) * (1.0 + t[big])).sum())
    total += float((np.exp(lw[~big] + la[~big]) * _phi(t[~big])).sum())
    return total


def _js_sum(log_w: np.ndarray, log_a: np.ndarray, log_b: np.ndarray) -> float:
    """½ Σ w · [a log(2a/(a+b)) + b log(2b/(a+b))] = ½ Σ w · (a+b) · g((log a - log b)/2)."""
    keep = np.isfinite(log_a) | np.isfinite(log_b)
    la, lb, lw = log_a[keep], log_b[keep], log_w[keep]
    with np.errstate(invalid="ignore"):
        half_diff = np.where(np.isfinite(la) & np.isfinite(lb), 0.5 * (la - lb), np.inf)
    return 0.5 * float((np.exp(lw + np.logaddexp(la, lb)) * _g(half_diff)).sum())


def _in_unit(value: float, unit: Unit) -> float:
    if unit == "nats":
        return value
    if unit == "bits":
        return value / _LOG2
    raise ImprovedGANError(f"unit must be 'nats' or 'bits', got {unit!r}")


# --------------------------------------------------------------------------------------------------
# Public divergences
# --------------------------------------------------------------------------------------------------
def _minibatch_logs(p: ArrayLike, q: ArrayLike, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pv, qv, n = _check_pair(p, q, n)
    _check_size(num_count_vectors(n, pv.size), f"a minibatch divergence with n={n}, K={pv.size}")
    counts, log_w = _count_vectors(n, pv.size)
    return log_w, _log_prob_of_counts(counts, pv), _log_prob_of_counts(counts, qv)


def minibatch_kl(p: ArrayLike, q: ArrayLike, n: int = 1, *, unit: Unit = "nats") -> float:
    """KL(P^N ‖ Q^N) = Σ_c N!/Π c_k! · P^N(c) log(P^N(c) / Q^N(c)), summed over count vectors c.

    Equals N · KL(P ‖ Q) (tested, not assumed); +inf when q_k = 0 < p_k for some k.
    """
    return _in_unit(_kl_sum(*_minibatch_logs(p, q, n)), unit)


def minibatch_js(p: ArrayLike, q: ArrayLike, n: int = 1, *, unit: Unit = "nats") -> float:
    """JS(P^N ‖ Q^N) = ½ KL(P^N ‖ M) + ½ KL(Q^N ‖ M), M = ½ (P^N + Q^N), summed over count vectors.

    Symmetric, zero iff P = Q, at most min(N · JS(P ‖ Q), log 2), and JS(P^N ‖ Q^N) / N is
    non-increasing in N.
    """
    return _in_unit(_js_sum(*_minibatch_logs(p, q, n)), unit)


def _preference_logs(p: ArrayLike, q: ArrayLike, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-weights and log-probabilities of P^N × Q^N and Q^N × P^N over pairs (c, c') of count vectors."""
    pv, qv, n = _check_pair(p, q, n)
    _check_size(num_count_vectors(n, pv.size) ** 2, f"a preference divergence with n={n}, K={pv.size}")
    counts, log_w = _count_vectors(n, pv.size)
    lp, lq = _log_prob_of_counts(counts, pv), _log_prob_of_counts(counts, qv)
    log_w2 = (log_w[:, None] + log_w[None, :]).ravel()
    log_a = (lp[:, None] + lq[None, :]).ravel()  # (P^N × Q^N)(c, c') = P^N(c) Q^N(c')
    log_b = (lq[:, None] + lp[None, :]).ravel()  # (Q^N × P^N)(c, c') = Q^N(c) P^N(c')
    return log_w2, log_a, log_b


def preference_kl(p: ArrayLike, q: ArrayLike, n: int = 1, *, unit: Unit = "nats") -> float:
    """Adversarial preference divergence KL(P^N × Q^N ‖ Q^N × P^N), computed by summation.

    It equals N · (KL(P ‖ Q) + KL(Q ‖ P)), the symmetrised (Jeffreys) divergence.
    """
    return _in_unit(_kl_sum(*_preference_logs(p, q, n)), unit)


def preference_js(p: ArrayLike, q: ArrayLike, n: int = 1, *, unit: Unit = "nats") -> float:
    """Adversarial preference divergence JS(P^N × Q^N ‖ Q^N × P^N), computed by summation."""
    return _in_unit(_js_sum(*_preference_logs(p, q, n)), unit)


def kl_divergence(p: ArrayLike, q: ArrayLike, *, unit: Unit = "nats") -> float:
    """KL(P ‖ Q) = Σ_k p_k log(p_k / q_k) for one sample (N = 1)."""
    return minibatch_kl(p, q, 1, unit=unit)


def js_divergence(p: ArrayLike, q: ArrayLike, *, unit: Unit = "nats") -> float:
    """JS(P ‖ Q) for one sample (N = 1)."""
    return minibatch_js(p, q, 1, unit=unit)
