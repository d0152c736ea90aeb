"""The paper's training techniques (§3), one module each.

* :mod:`~improved_gan.techniques.feature_matching` (§3.1): :func:`feature_matching_loss`,
  :class:`FeatureExtractor`.
* :mod:`~improved_gan.techniques.minibatch_discrimination` (§3.2):
  :class:`MinibatchDiscrimination`, :class:`JointMinibatchDiscrimination`.
* :mod:`~improved_gan.techniques.historical_averaging` (§3.3): :class:`HistoricalAveraging`.
* :mod:`~improved_gan.techniques.label_smoothing` (§3.4): one-sided label smoothing losses.
* :mod:`~improved_gan.techniques.virtual_batch_norm` (§3.5): :class:`VirtualBatchNorm1d`,
  :class:`VirtualBatchNorm2d`, :class:`ReferenceBatch`, :func:`forward_with_reference`.
"""

from improved_gan.techniques.feature_matching import FeatureExtractor, feature_matching_loss
from improved_gan.techniques.historical_averaging import HistoricalAveraging
from improved_gan.techniques.label_smoothing import (
    binary_generator_loss,
    one_sided_binary_loss,
    one_sided_unsupervised_loss,
)
from improved_gan.techniques.minibatch_discrimination import (
    JointMinibatchDiscrimination,
    MinibatchDiscrimination,
    has_cross_example_layers,
    pairwise_l1,
)
from improved_gan.techniques.virtual_batch_norm import (
    ReferenceBatch,
    VirtualBatchNorm1d,
    VirtualBatchNorm2d,
    forward_with_reference,
)

__all__ = [
    "FeatureExtractor",
    "HistoricalAveraging",
    "JointMinibatchDiscrimination",
    "MinibatchDiscrimination",
    "ReferenceBatch",
    "VirtualBatchNorm1d",
    "VirtualBatchNorm2d",
    "binary_generator_loss",
    "feature_matching_loss",
    "forward_with_reference",
    "has_cross_example_layers",
    "one_sided_binary_loss",
    "one_sided_unsupervised_loss",
    "pairwise_l1",
]
