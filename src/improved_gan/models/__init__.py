"""The paper's discriminators and generators, and the layers they are built from. Models use
:mod:`improved_gan.techniques` (virtual batch norm, minibatch discrimination) as layers."""

from improved_gan.models.conv import ConvDiscriminator, ConvGenerator
from improved_gan.models.generator import NoiseGenerator
from improved_gan.models.imagenet import CrossBatchNorm, ImagenetDiscriminator, ImagenetGenerator, is_joint
from improved_gan.models.layers import (
    GaussianNoise,
    L2NormalizedDense,
    ShiftOnlyBatchNorm,
    WeightNormConv2d,
    WeightNormConvTranspose2d,
    WeightNormDense,
    data_dependent_init,
)
from improved_gan.models.mnist import MnistDiscriminator, MnistGenerator

__all__ = [
    "ConvDiscriminator",
    "ConvGenerator",
    "CrossBatchNorm",
    "ImagenetDiscriminator",
    "ImagenetGenerator",
    "GaussianNoise",
    "L2NormalizedDense",
    "MnistDiscriminator",
    "MnistGenerator",
    "NoiseGenerator",
    "ShiftOnlyBatchNorm",
    "WeightNormConv2d",
    "WeightNormConvTranspose2d",
    "WeightNormDense",
    "data_dependent_init",
    "is_joint",
]
