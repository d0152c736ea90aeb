"""Exact minibatch divergences: identities of the analysis, brute force over sequences, stability."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal, getcontext

import numpy as np
import pytest

from improved_gan.analysis.minibatch_divergence import (
    _count_vectors,
    js_divergence,
    kl_divergence,
    minibatch_js,
    minibatch_kl,
    num_count_vectors,
    preference_js,
    preference_kl,
)
from improved_gan.errors import ImprovedGANError

LOG2 = math.log(2.0)


def _random_pair(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))


def _brute_force(p: np.ndarray, q: np.ndarray, n: int) -> tuple[float, float]:
    """KL(P^N‖Q^N) and JS(P^N‖Q^N) by enumerating all K^N sequences, straight from the definitions."""
    kl = js = 0.0
    for seq in itertools.product(range(len(p)), repeat=n):
        a = math.prod(p[i] for i in seq)
        b = math.prod(q[i] for i in seq)
        m = 0.5 * (a + b)
        if a > 0:
            kl += a * math.log(a / b) if b > 0 else math.inf
            js += 0.5 * a * math.log(a / m)
        if b > 0:
            js += 0.5 * b * math.log(b / m)
    return kl, js


def _brute_force_preference(p: np.ndarray, q: np.ndarray, n: int) -> tuple[float, float]:
    """KL and JS between P^N × Q^N and Q^N × P^N, enumerating all pairs of sequences."""
    kl = js = 0.0
    seqs = list(itertools.product(range(len(p)), repeat=n))
    for s1, s2 in itertools.product(seqs, seqs):
        a = math.prod(p[i] for i in s1) * math.prod(q[i] for i in s2)
        b = math.prod(q[i] for i in s1) * math.prod(p[i] for i in s2)
        m = 0.5 * (a + b)
        kl += a * math.log(a / b)
        js += 0.5 * (a * math.log(a / m) + b * math.log(b / m))
    return kl, js


def test_kl_of_product_is_n_times_kl_for_random_pairs_up_to_n10() -> None:
    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        for _ in range(3):
            p, q = _random_pair(rng, k)
            kl1 = float(np.sum(p * np.log(p / q)))  # independent one-sample formula
            for n in range(1, 11):
                assert minibatch_kl(p, q, n) == pytest.approx(n * kl1, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize(("k", "n"), [(2, 1), (2, 6), (3, 1), (3, 4), (4, 3), (5, 2)])
def test_agrees_with_brute_force_enumeration_over_all_sequences(k: int, n: int) -> None:
    rng = np.random.default_rng(100 * k + n)
    p, q = _random_pair(rng, k)
    kl, js = _brute_force(p, q, n)
    assert minibatch_kl(p, q, n) == pytest.approx(kl, rel=1e-11)
    assert minibatch_js(p, q, n) == pytest.approx(js, rel=1e-11)


def test_brute_force_agreement_with_zero_probabilities() -> None:
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.2, 0.3, 0.5])
    for n in (1, 2, 3):
        kl, js = _brute_force(p, q, n)
        assert minibatch_kl(p, q, n) == pytest.approx(kl, rel=1e-12)
        assert minibatch_js(p, q, n) == pytest.approx(js, rel=1e-12)
        assert minibatch_js(q, p, n) == pytest.approx(js, rel=1e-12)
        assert math.isinf(minibatch_kl(q, p, n))  # q puts mass where p has none


@pytest.mark.parametrize(("k", "n"), [(2, 1), (2, 3), (3, 2)])
def test_preference_divergences_agree_with_brute_force(k: int, n: int) -> None:
    rng = np.random.default_rng(7 * k + n)
    p, q = _random_pair(rng, k)
    kl, js = _brute_force_preference(p, q, n)
    assert preference_kl(p, q, n) == pytest.approx(kl, rel=1e-11)
    assert preference_js(p, q, n) == pytest.approx(js, rel=1e-11)


def test_preference_kl_is_n_times_the_symmetrised_kl() -> None:
    rng = np.random.default_rng(3)
    p, q = _random_pair(rng, 4)
    jeffreys = float(np.sum(p * np.log(p / q)) + np.sum(q * np.log(q / p)))
    for n in (1, 2, 5):
        assert preference_kl(p, q, n) == pytest.approx(n * jeffreys, rel=1e-10)


def test_js_of_product_is_at_most_n_js_and_log2_and_js_per_sample_does_not_increase() -> None:
    rng = np.random.default_rng(1)
    for k in (2, 3, 4):
        for _ in range(4):
            p, q = _random_pair(rng, k)
            js1 = minibatch_js(p, q, 1)
            per_sample = [minibatch_js(p, q, n) / n for n in range(1, 13)]
            for n, value in enumerate(per_sample, start=1):
                assert n * value <= min(n * js1, LOG2) + 1e-12
            assert all(b <= a + 1e-13 for a, b in itertools.pairwise(per_sample))
            # the bound is not tight beyond N = 1 for distinct P, Q
            assert minibatch_js(p, q, 2) < 2 * js1


def test_js_saturates_at_log2_for_disjoint_supports_and_large_batches() -> None:
    for n in (1, 4, 9):
        assert minibatch_js([0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.3, 0.7], n) == pytest.approx(LOG2, rel=1e-14)
    assert minibatch_js(0.2, 0.8, 256) == pytest.approx(LOG2, rel=1e-9)


def test_js_is_symmetric() -> None:
    rng = np.random.default_rng(2)
    for k, n in [(2, 7), (3, 5), (6, 3)]:
        p, q = _random_pair(rng, k)
        assert minibatch_js(p, q, n) == pytest.approx(minibatch_js(q, p, n), rel=1e-13)
        assert preference_js(p, q, 2) == pytest.approx(preference_js(q, p, 2), rel=1e-13)


def test_divergences_are_zero_iff_p_equals_q() -> None:
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(4))
    for n in (1, 3, 8):
        assert minibatch_js(p, p, n) == 0.0
        assert minibatch_kl(p, p, n) == 0.0
        assert preference_js(p, p, 2) == 0.0
    nudged = p + np.array([1e-4, -1e-4, 0.0, 0.0])
    for n in (1, 3, 8):
        assert minibatch_js(p, nudged, n) > 0.0
        assert minibatch_kl(p, nudged, n) > 0.0
    # JS ≈ (1/8) χ²-type quadratic form for a small perturbation: δᵀ diag(1/p) δ / 8
    delta = nudged - p
    assert minibatch_js(p, nudged, 1) == pytest.approx(float(np.sum(delta**2 / p)) / 8, rel=1e-3)


def test_bits_are_nats_divided_by_log2() -> None:
    assert minibatch_js(0.2, 0.6, 3, unit="bits") == pytest.approx(
        minibatch_js(0.2, 0.6, 3) / LOG2, rel=1e-15
    )
    assert kl_divergence(0.2, 0.6, unit="bits") == pytest.approx(kl_divergence(0.2, 0.6) / LOG2, rel=1e-15)
    assert js_divergence([0.0, 1.0], [1.0, 0.0], unit="bits") == pytest.approx(1.0, rel=1e-15)


def _js_bernoulli_high_precision(p: float, q: float, n: int) -> float:
    """JS(Bin-sufficient) with 60-digit decimals: Σ_k C(n,k) [a_k log(2a_k/(a_k+b_k)) + ...] / 2."""
    getcontext().prec = 60
    dp, dq = Decimal(p), Decimal(q)
    total = Decimal(0)
    for k in range(n + 1):
        a = dp**k * (1 - dp) ** (n - k)
        b = dq**k * (1 - dq) ** (n - k)
        m = (a + b) / 2
        total += math.comb(n, k) * (a * (a / m).ln() + b * (b / m).ln()) / 2
    return float(total)


@pytest.mark.parametrize("q", [0.2 + 1e-6, 0.21, 0.5, 0.999])
def test_bernoulli_n256_matches_60_digit_arithmetic(q: float) -> None:
    assert minibatch_js(0.2, q, 256) == pytest.approx(_js_bernoulli_high_precision(0.2, q, 256), rel=1e-9)
    assert minibatch_kl(0.2, q, 256) == pytest.approx(256 * kl_divergence(0.2, q), rel=1e-9)


def test_count_vectors_enumerate_each_composition_once_with_multinomial_weights() -> None:
    for n, k in [(1, 1), (5, 1), (4, 3), (8, 10), (256, 2)]:
        counts, log_w = _count_vectors(n, k)
        assert counts.shape == (num_count_vectors(n, k), k)
        assert np.all(counts.sum(axis=1) == n) and np.all(counts >= 0)
        assert len({tuple(row) for row in counts.tolist()}) == counts.shape[0]
        # Σ_c n! / Π c_k! = k^n (multinomial theorem)
        assert float(np.logaddexp.reduce(log_w)) == pytest.approx(n * math.log(k), rel=1e-12, abs=1e-12)


def test_a_scalar_means_bernoulli() -> None:
    assert minibatch_js(0.3, 0.6, 4) == minibatch_js([0.7, 0.3], [0.4, 0.6], 4)


@pytest.mark.parametrize(
    ("p", "q", "n", "match"),
    [
        ([0.5, 0.5], [0.2, 0.3, 0.5], 2, "same K"),
        ([0.5, 0.6], [0.5, 0.5], 2, "sums to"),
        ([1.5, -0.5], [0.5, 0.5], 2, "negative"),
        (0.2, 0.3, 0, "positive integer"),
        (0.2, 0.3, 2.5, "positive integer"),
        (np.ones(10) / 10, np.ones(10) / 10, 40, "smaller batch size"),
    ],
)
def test_invalid_inputs_raise_a_user_error(p: object, q: object, n: object, match: str) -> None:
    with pytest.raises(ImprovedGANError, match=match):
        minibatch_js(p, q, n)  # type: ignore[arg-type]
