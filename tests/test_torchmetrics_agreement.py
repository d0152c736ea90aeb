"""Our scores against torchmetrics' (a test-only dependency), same classifier, same images.

torchmetrics' ``InceptionScore`` differs from the reference in two documented ways that this test
accounts for: it permutes the samples with an unseeded ``torch.randperm`` before splitting (we
replay the permutation from the same torch seed), and it returns ``torch.std`` (ddof = 1) where
the reference returns ``np.std`` (ddof = 0): its std is ours × √(splits / (splits − 1)).
It also computes in float32 and splits with ``chunk`` (equal to the reference's slices when N is a
multiple of the number of splits).
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from improved_gan.metrics.classifier import DatasetClassifier, classifier_outputs
from improved_gan.metrics.fid import fid_from_features
from improved_gan.metrics.inception_score import inception_score

tm_inception = pytest.importorskip("torchmetrics.image.inception")
tm_fid = pytest.importorskip("torchmetrics.image.fid")


class Output(nn.Module):
    """One output of the classifier, as torchmetrics wants a module returning (N, d)."""

    def __init__(self, classifier: nn.Module, index: int) -> None:
        super().__init__()
        self.classifier, self.index = classifier, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)[self.index]


@pytest.fixture(scope="module")
def setup():
    from improved_gan.data import load_idx_dataset

    torch.manual_seed(0)
    classifier = DatasetClassifier().eval()
    with torch.no_grad():
        classifier.out.weight.mul_(200)  # an untrained net with confident, varied predictions
    images = torch.from_numpy(load_idx_dataset("mnist", "test")[0][:1000])
    return classifier, images


def test_inception_score_equals_torchmetrics_with_its_shuffle_and_ddof_accounted_for(setup):
    classifier, images = setup
    features, logits = classifier_outputs(classifier, images)
    ours_unshuffled = inception_score(logits, splits=10)
    assert ours_unshuffled[0] > 1.2  # a comparison of non-trivial scores

    metric = tm_inception.InceptionScore(feature=Output(copy.deepcopy(classifier), 1), splits=10)
    for batch in images.split(300):
        metric.update(batch)
    torch.manual_seed(1234)
    tm_mean, tm_std = (float(v) for v in metric.compute())
    torch.manual_seed(1234)
    perm = torch.randperm(len(images))  # the permutation torchmetrics drew
    mean, std = inception_score(logits[perm], splits=10)
    assert tm_mean == pytest.approx(mean, rel=1e-5)
    assert tm_std == pytest.approx(std * np.sqrt(10 / 9), rel=1e-4)
    assert tm_std != pytest.approx(std, rel=1e-2)  # the ddof difference is real


def test_fid_equals_torchmetrics_on_the_classifier_features(setup):
    classifier, images = setup
    real, fake = images[:500], images[500:]
    metric = tm_fid.FrechetInceptionDistance(
        feature=Output(copy.deepcopy(classifier), 0), input_img_size=(1, 28, 28)
    )  # sums in float64
    metric.update(real, real=True)
    metric.update(fake, real=False)
    (f_real, _), (f_fake, _) = classifier_outputs(classifier, real), classifier_outputs(classifier, fake)
    assert float(metric.compute()) == pytest.approx(fid_from_features(f_fake, f_real), rel=1e-4)
