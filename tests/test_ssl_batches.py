import numpy as np
import pytest
import torch

from improved_gan.data import SemiSupervisedBatches, balanced_labelled_subset
from improved_gan.errors import ImprovedGANError


def _labels(n=1000, k=10, seed=0):
    return np.random.default_rng(seed).integers(0, k, size=n)


def test_balanced_subset_has_equal_counts_per_class():
    y = _labels()
    idx = balanced_labelled_subset(y, 7, seed_data=3)
    assert len(idx) == 70 and len(set(idx.tolist())) == 70
    assert np.bincount(y[idx], minlength=10).tolist() == [7] * 10


def test_balanced_subset_is_determined_by_the_data_seed():
    y = _labels()
    a = balanced_labelled_subset(y, 5, seed_data=1)
    np.testing.assert_array_equal(a, balanced_labelled_subset(y, 5, seed_data=1))
    assert set(a.tolist()) != set(balanced_labelled_subset(y, 5, seed_data=2).tolist())


def test_balanced_subset_follows_the_reference_permutation():
    """The reference keeps the first `count` of each class in RandomState(seed_data).permutation."""
    y = _labels(200)
    perm = np.random.RandomState(4).permutation(200)
    expected = np.concatenate([[i for i in perm if y[i] == c][:3] for c in range(10)])
    np.testing.assert_array_equal(balanced_labelled_subset(y, 3, seed_data=4), expected)


def test_too_many_labels_per_class_is_a_clear_error():
    y = np.array([0, 0, 1])
    with pytest.raises(ImprovedGANError, match="class 1 has only 1"):
        balanced_labelled_subset(y, 2, seed_data=0)


def test_epoch_streams_tile_labelled_and_permute_unlabelled():
    n_unl, n_lab, b = 600, 20, 100
    x_unl = torch.arange(n_unl).float().unsqueeze(1)
    x_lab = torch.arange(n_lab).float().unsqueeze(1) + 10_000
    y_lab = torch.arange(n_lab) % 10
    batches = SemiSupervisedBatches(x_lab, y_lab, x_unl, batch_size=b)
    assert len(batches) == n_unl // b and batches.repeats == n_unl // n_lab
    epoch = list(batches.epoch(torch.Generator().manual_seed(0)))
    assert len(epoch) == 6
    lab = torch.cat([bt.x_lab for bt in epoch]).squeeze(1).long() - 10_000
    # every labelled example appears equally often: R full permutations
    assert torch.bincount(lab, minlength=n_lab).tolist() == [n_unl // n_lab] * n_lab
    # labels travel with their images
    ys = torch.cat([bt.y_lab for bt in epoch])
    assert torch.equal(ys, lab % 10)
    # each unlabelled stream is a permutation of the whole set, and the two streams differ
    unl = torch.cat([bt.x_unl for bt in epoch]).squeeze(1)
    unl2 = torch.cat([bt.x_unl2 for bt in epoch]).squeeze(1)
    assert sorted(unl.tolist()) == list(range(n_unl)) == sorted(unl2.tolist())
    assert not torch.equal(unl, unl2)


def test_epochs_are_reproducible_from_the_generator_state_and_differ_between_epochs():
    x = torch.randn(300, 2)
    batches = SemiSupervisedBatches(x[:10], torch.arange(10), x, batch_size=100)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    first = [b.x_unl for b in batches.epoch(g1)]
    assert all(torch.equal(a, b.x_unl) for a, b in zip(first, batches.epoch(g2)))
    second = [b.x_unl for b in batches.epoch(g1)]
    assert not all(torch.equal(a, b) for a, b in zip(first, second))


def test_ceil_tiling_covers_the_epoch():
    x = torch.randn(250, 1)
    batches = SemiSupervisedBatches(x[:30], torch.zeros(30, dtype=torch.long), x, batch_size=50, tile="ceil")
    assert batches.repeats == 9  # ceil(250 / 30)
    assert sum(len(b.x_lab) for b in batches.epoch(torch.Generator())) == 250
