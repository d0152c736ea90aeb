"""The paper's discriminators and generators, and the layers they are built from."""

from improved_gan.models.layers import (
    GaussianNoise,
    L2NormalizedDense,
    ShiftOnlyBatchNorm,
    WeightNormDense,
    data_dependent_init,
)
from improved_gan.models.mnist import MnistDiscriminator, MnistGenerator

__all__ = [
    "GaussianNoise",
    "L2NormalizedDense",
    "MnistDiscriminator",
    "MnistGenerator",
    "ShiftOnlyBatchNorm",
    "WeightNormDense",
    "data_dependent_init",
]
