"""The Inception Score formula: reference semantics (contiguous splits, population std), float64,
no NaN, the streaming accumulator, and clear errors."""

import numpy as np
import pytest
import torch

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.inception_score import (
    InceptionScoreAccumulator,
    inception_score,
    looks_like_probabilities,
    split_scores,
)


def reference_get_inception_score(preds: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """openai/improved-gan inception_score/model.py, the scoring part, transcribed literally
    (probabilities in, contiguous splits, raw logs, np.std)."""
    scores = []
    for i in range(splits):
        part = preds[(i * preds.shape[0] // splits) : ((i + 1) * preds.shape[0] // splits), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        kl = np.mean(np.sum(kl, 1))
        scores.append(np.exp(kl))
    return np.mean(scores), np.std(scores)


def softmax64(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("n,k,splits", [(1000, 10, 10), (1003, 7, 10), (250, 1008, 3), (20, 5, 1)])
def test_equals_the_reference_code_on_random_logits(n, k, splits):
    logits = np.random.RandomState(n).randn(n, k) * 3
    expected = reference_get_inception_score(softmax64(logits), splits)
    got = inception_score(logits, splits=splits, kind="logits")
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_probabilities_and_logits_give_the_same_score():
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(0)) * 4
    from_logits = inception_score(logits)
    from_probs = inception_score(torch.softmax(logits.double(), 1))
    np.testing.assert_allclose(from_logits, from_probs, rtol=1e-10)
    assert looks_like_probabilities(torch.softmax(logits, 1).double())
    assert not looks_like_probabilities(logits.double())


def test_uniform_predictions_score_one_and_confident_balanced_predictions_score_k():
    assert inception_score(torch.zeros(100, 10)) == pytest.approx((1.0, 0.0), abs=1e-12)
    confident = torch.full((1000, 10), -60.0)
    confident[torch.arange(1000), torch.arange(1000) % 10] = 60.0
    mean, std = inception_score(confident)
    assert mean == pytest.approx(10.0, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_zero_probabilities_give_no_nan_where_the_reference_gives_nan():
    probs = np.eye(10)[np.arange(100) % 10]  # exact zeros
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isnan(reference_get_inception_score(probs)[0])
    assert inception_score(probs) == pytest.approx((10.0, 0.0))


def test_splits_are_contiguous_so_class_sorted_input_scores_low_unless_shuffled():
    logits = torch.full((1000, 10), -20.0)
    labels = torch.arange(1000) // 100  # sorted: each split sees one class
    logits[torch.arange(1000), labels] = 20.0
    assert inception_score(logits)[0] == pytest.approx(1.0, abs=1e-6)
    assert inception_score(logits, shuffle=True, seed=2020)[0] > 9.0
    perm = np.random.RandomState(2020).permutation(1000)
    assert inception_score(logits, shuffle=True, seed=2020) == inception_score(logits[perm])


def test_std_is_the_population_std_of_the_split_scores():
    logits = torch.randn(300, 10, generator=torch.Generator().manual_seed(1)) * 2
    scores = split_scores(logits, splits=10)
    assert scores.shape == (10,)
    assert inception_score(logits, splits=10)[1] == pytest.approx(np.std(scores, ddof=0), rel=1e-12)
    assert np.std(scores, ddof=1) / np.std(scores, ddof=0) == pytest.approx(np.sqrt(10 / 9))


def test_float32_input_is_computed_in_float64():
    logits = torch.randn(200, 10, generator=torch.Generator().manual_seed(2)) * 5
    np.testing.assert_allclose(inception_score(logits.float()), inception_score(logits.double()), rtol=1e-12)


@pytest.mark.parametrize("shuffle", [False, True])
def test_streaming_accumulator_equals_the_batch_formula(shuffle):
    logits = torch.randn(1037, 12, generator=torch.Generator().manual_seed(3)) * 3
    acc = InceptionScoreAccumulator(1037, splits=10, shuffle=shuffle, seed=7)
    for lo, hi in [(0, 1), (1, 500), (500, 501), (501, 1037)]:
        acc.update(logits[lo:hi])
    np.testing.assert_allclose(
        acc.split_scores(), split_scores(logits, 10, shuffle=shuffle, seed=7), rtol=1e-10
    )


def test_clear_errors():
    with pytest.raises(ImprovedGANError, match="at least as many samples as splits"):
        inception_score(torch.randn(9, 10), splits=10)
    with pytest.raises(ImprovedGANError, match="2-D"):
        inception_score(torch.randn(100))
    with pytest.raises(ImprovedGANError, match="2-D"):
        inception_score(torch.randn(10, 10, 3))
    with pytest.raises(ImprovedGANError, match="NaN"):
        inception_score(torch.full((20, 3), float("nan")))
    with pytest.raises(ImprovedGANError, match="non-negative"):
        inception_score(-torch.rand(20, 3), kind="probs")
    acc = InceptionScoreAccumulator(20, splits=2)
    acc.update(torch.randn(10, 3))
    with pytest.raises(ImprovedGANError, match="announced"):
        acc.compute()
    with pytest.raises(ImprovedGANError, match="more samples"):
        acc.update(torch.randn(11, 3))
