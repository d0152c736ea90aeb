"""The Inception Score of the paper (§4), exactly as the reference code computes it.

IS = exp(E_x KL(p(y|x) ‖ p(y))). The reference (openai/improved-gan ``inception_score/model.py``,
openai/improved-gan `inception_score/model.py`) cuts the N predictions into ``splits`` *contiguous* chunks
``[i·N//splits, (i+1)·N//splits)``, computes for each chunk
s_k = exp(mean_i Σ_c p_ic (log p_ic − log p̄_c)) with p̄ the chunk's mean prediction, and returns
(mean_k s_k, population std_k s_k) (``np.std``, ddof = 0).

Where we differ, on purpose, without changing the value: everything is computed in float64 from
``log_softmax`` of the logits, and 0·log 0 counts as 0, so no NaN appears where the reference's
float32 ``log(p)`` of an underflowed probability gave one (reference issue #29).

``shuffle=True`` permutes the samples first with ``numpy.random.RandomState(seed).permutation``,
which is what torch-fidelity does (its default, seed 2020), so ``shuffle=True, seed=2020``
reproduces torch-fidelity's numbers; the reference itself does not shuffle (``shuffle=False``,
our default) and so is deflated by class-sorted input.

:class:`InceptionScoreAccumulator` gives the same numbers from batches (memory O(splits·K),
independent of N).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.checks import check_int, check_seed

InputKind = Literal["auto", "logits", "probs"]


def _as_float64(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    if t.dim() != 2:
        raise ImprovedGANError(
            f"inception_score expects a 2-D (N samples, K classes) array of logits or probabilities, "
            f"got shape {tuple(t.shape)}"
        )
    if not (t.is_floating_point()):
        raise ImprovedGANError(
            f"inception_score expects floating-point logits or probabilities, got {t.dtype}"
        )
    if t.shape[1] < 2:
        raise ImprovedGANError(
            f"the Inception Score needs predictions over at least 2 classes, got {t.shape[1]}"
        )
    return t.detach().to("cpu", torch.float64)


def looks_like_probabilities(x: torch.Tensor, atol: float = 1e-3) -> bool:
    """True when every entry lies in [0, 1] and every row sums to 1 within ``atol``."""
    return bool(
        x.numel() > 0 and x.min() >= 0 and x.max() <= 1 and bool(((x.sum(1) - 1).abs() <= atol).all())
    )


def log_probabilities(x, kind: InputKind = "auto") -> torch.Tensor:
    """float64 log p(y|x), (N, K), from logits (``log_softmax``) or probabilities (renormalised
    rows, ``log``; a 0 gives −inf and is treated as 0·log 0 = 0 downstream).

    ``kind="auto"`` treats the input as probabilities when :func:`looks_like_probabilities`,
    else as logits. Logits that happen to be non-negative, at most 1 and sum to 1 per row
    would be misread: pass ``kind="logits"`` when you can.
    """
    t = _as_float64(x)
    if not torch.isfinite(t).all():
        raise ImprovedGANError("inception_score input contains NaN or infinite values")
    if kind == "auto":
        kind = "probs" if looks_like_probabilities(t) else "logits"
    if kind == "logits":
        return torch.log_softmax(t, dim=1)
    if kind == "probs":
        if (t < 0).any():
            raise ImprovedGANError("probabilities must be non-negative")
        if (t.sum(1) <= 0).any():
            raise ImprovedGANError("every row of probabilities must have a positive sum")
        return torch.log(t / t.sum(1, keepdim=True))
    raise ImprovedGANError(f"kind must be 'auto', 'logits' or 'probs', got {kind!r}")


def _xlogy_sum(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Σ_c p_c log q_c over the last axis, with 0·log(anything) = 0."""
    return torch.where(p > 0, p * log_q, torch.zeros((), dtype=p.dtype)).sum(-1)


def _split_bounds(n: int, splits: int) -> list[tuple[int, int]]:
    return [(k * n // splits, (k + 1) * n // splits) for k in range(splits)]


def _check_counts(n: int, splits: int, seed: int | None = None) -> None:
    check_int(splits, "splits", 1, 10)
    check_seed(seed)
    if n < splits:
        raise ImprovedGANError(
            f"the Inception Score needs at least as many samples as splits ({n} samples < {splits} splits); "
            "give more samples (the paper uses 50,000) or fewer splits"
        )


def split_scores(
    logits_or_probs,
    splits: int = 10,
    shuffle: bool = False,
    seed: int | None = None,
    kind: InputKind = "auto",
) -> np.ndarray:
    """The per-split scores s_k, float64 (splits,)."""
    log_p = log_probabilities(logits_or_probs, kind)
    n = log_p.shape[0]
    _check_counts(n, splits, seed)
    if shuffle:
        log_p = log_p[torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    p = log_p.exp()
    scores = []
    for lo, hi in _split_bounds(n, splits):
        p_k, log_p_k = p[lo:hi], log_p[lo:hi]
        log_marginal = torch.log(p_k.mean(0))
        kl = _xlogy_sum(p_k, log_p_k) - _xlogy_sum(p_k, log_marginal)  # (n_k,)
        scores.append(torch.exp(kl.mean()))
    return torch.stack(scores).numpy()


def inception_score(
    logits_or_probs,
    splits: int = 10,
    shuffle: bool = False,
    seed: int | None = None,
    kind: InputKind = "auto",
) -> tuple[float, float]:
    """(mean, population std) of the Inception Score over ``splits`` contiguous splits.

    Args:
        logits_or_probs: (N, K) array or tensor: class logits (reference: Inception's pool3 times
            the fc weight, no bias) or probabilities. See :func:`log_probabilities` for ``kind``.
        splits: number of contiguous chunks (reference: 10).
        shuffle: permute the samples first with ``RandomState(seed)`` (torch-fidelity: seed 2020).
        seed: the permutation's seed when ``shuffle``.

    Matches openai/improved-gan ``get_inception_score`` (contiguous splits, ``np.std``), computed
    in float64. Raises :class:`ImprovedGANError` when N < splits or the input is not 2-D.
    """
    scores = split_scores(logits_or_probs, splits, shuffle, seed, kind)
    return float(np.mean(scores)), float(np.std(scores))


class InceptionScoreAccumulator:
    """Streaming Inception Score: feed (B, K) logits batch by batch, get :func:`inception_score`'s
    result for the concatenation without keeping it.

    The number of samples ``n`` must be known up front (the splits are index ranges). Per split it
    keeps Σ p and Σ Σ_c p log p, using mean_i KL_i = mean_i Σ_c p_ic log p_ic − Σ_c p̄_c log p̄_c:
    memory O(splits·K), the same value as the batch formula up to float64 rounding.
    """

    def __init__(
        self,
        n: int,
        splits: int = 10,
        shuffle: bool = False,
        seed: int | None = None,
        kind: InputKind = "logits",
    ) -> None:
        _check_counts(n, splits, seed)
        self.n, self.splits, self.kind = n, splits, kind
        self.seen = 0
        position = np.arange(n)
        if shuffle:  # sample i lands at position inverse_perm[i] of the shuffled order
            perm = np.random.RandomState(seed).permutation(n)
            position = np.empty(n, dtype=np.int64)
            position[perm] = np.arange(n)
        bounds = np.array([hi for _, hi in _split_bounds(n, splits)])
        self._split_of = torch.from_numpy(np.searchsorted(bounds, position, side="right"))
        self._counts = torch.zeros(splits, dtype=torch.float64)
        for k, (lo, hi) in enumerate(_split_bounds(n, splits)):
            self._counts[k] = hi - lo
        self._sum_p: torch.Tensor | None = None
        self._sum_plogp = torch.zeros(splits, dtype=torch.float64)

    def update(self, logits_or_probs) -> None:
        log_p = log_probabilities(logits_or_probs, self.kind)
        b = log_p.shape[0]
        if self.seen + b > self.n:
            raise ImprovedGANError(f"more samples than announced: {self.seen + b} > n={self.n}")
        if self._sum_p is None:
            self._sum_p = torch.zeros(self.splits, log_p.shape[1], dtype=torch.float64)
        p = log_p.exp()
        split = self._split_of[self.seen : self.seen + b]
        self._sum_p.index_add_(0, split, p)
        self._sum_plogp.index_add_(0, split, _xlogy_sum(p, log_p))
        self.seen += b

    def split_scores(self) -> np.ndarray:
        if self.seen != self.n or self._sum_p is None:
            raise ImprovedGANError(f"the accumulator got {self.seen} samples, but n={self.n} were announced")
        marginal = self._sum_p / self._counts[:, None]
        kl = self._sum_plogp / self._counts - _xlogy_sum(marginal, torch.log(marginal))
        return torch.exp(kl).numpy()

    def compute(self) -> tuple[float, float]:
        scores = self.split_scores()
        return float(np.mean(scores)), float(np.std(scores))
