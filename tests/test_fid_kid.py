"""FID from streaming float64 statistics, against closed forms; KID against a direct loop."""

import numpy as np
import pytest
import torch

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.fid import (
    FeatureStatistics,
    fid_from_features,
    frechet_distance,
    load_statistics,
    save_statistics,
    trace_sqrt_product,
)
from improved_gan.metrics.kid import kernel_inception_distance, mmd2_unbiased


def test_streaming_statistics_equal_numpy_mean_and_cov_of_all_features():
    rng = np.random.RandomState(0)
    x = rng.randn(1001, 6).astype(np.float32) * 3 + 1000  # a large offset tests the stable update
    stats = FeatureStatistics()
    for lo, hi in [(0, 1), (1, 2), (2, 500), (500, 1001)]:
        stats.update(torch.from_numpy(x[lo:hi]))
    assert stats.n == 1001
    np.testing.assert_allclose(stats.mean(), x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov(), np.cov(x.astype(np.float64), rowvar=False), rtol=1e-9, atol=1e-9)


def test_fid_of_diagonal_gaussians_has_the_closed_form():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_trace_sqrt_of_non_commuting_2x2_covariances_has_the_closed_form():
    # For 2×2 M = Σ₁Σ₂ with positive eigenvalues: tr √M = √(tr M + 2 √det M).
    s1 = np.array([[2.0, 0.7], [0.7, 1.0]])
    s2 = np.array([[1.0, -0.4], [-0.4, 3.0]])
    m = s1 @ s2
    assert not np.allclose(m, m.T)  # they do not commute
    expected = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    assert trace_sqrt_product(s1, s2) == pytest.approx(expected, rel=1e-12)


def test_fid_of_a_sample_with_itself_is_zero_and_grows_with_a_shift():
    x = np.random.RandomState(1).randn(500, 8)
    assert abs(fid_from_features(x, x)) < 1e-8
    assert fid_from_features(x, x + 1.0) == pytest.approx(8.0, rel=1e-8)


def test_singular_covariances_give_a_finite_fid():
    x = np.random.RandomState(2).randn(5, 16)  # rank 4 covariance in 16 dimensions
    y = np.random.RandomState(3).randn(5, 16)
    assert np.isfinite(fid_from_features(x, y)) and fid_from_features(x, y) > 0


def test_statistics_roundtrip_through_npz(tmp_path):
    mu, sigma = np.arange(3.0), np.eye(3) * 2
    path = save_statistics(tmp_path / "ref.npz", mu, sigma, 7, extractor=np.str_("mnist"))
    loaded = load_statistics(path)
    np.testing.assert_array_equal(loaded["mu"], mu)
    np.testing.assert_array_equal(loaded["sigma"], sigma)
    assert int(loaded["n"]) == 7 and str(loaded["extractor"]) == "mnist"
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 3)))
    with pytest.raises(ImprovedGANError, match="not a statistics file"):
        load_statistics(tmp_path / "bad.npz")


def test_fid_refuses_features_of_different_sizes():
    with pytest.raises(ImprovedGANError, match="same extractor"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def mmd2_loop(x, y):
    def k(a, b):
        return (a @ b / len(a) + 1.0) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / m**2


def test_mmd2_equals_the_definition_written_as_loops():
    rng = np.random.RandomState(4)
    x, y = rng.randn(12, 5), rng.randn(12, 5) + 0.5
    assert mmd2_unbiased(x, y) == pytest.approx(mmd2_loop(x, y), rel=1e-10)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.RandomState(5)
    a, b, c = rng.randn(400, 8), rng.randn(400, 8), rng.randn(400, 8) + 0.5
    same, _ = kernel_inception_distance(a, b, subsets=10, subset_size=100)
    different, std = kernel_inception_distance(a, c, subsets=10, subset_size=100)
    assert abs(same) < 0.02 < different and std > 0
    # seeded subsets: the same call gives the same number
    assert kernel_inception_distance(a, c, subsets=3, subset_size=50) == kernel_inception_distance(
        a, c, subsets=3, subset_size=50
    )


def test_kid_subset_larger_than_the_sample_is_a_clear_error():
    with pytest.raises(ImprovedGANError, match="--kid-subset-size"):
        kernel_inception_distance(np.zeros((50, 3)), np.zeros((60, 3)), subset_size=100)
