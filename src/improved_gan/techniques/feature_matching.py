"""Feature matching (paper §3.1, Eq. 4): ‖E_x f(x) − E_z f(G(z))‖₂².

The generator matches the batch means of an intermediate discriminator layer f. The reference
code averages over units instead of summing (openai/improved-gan `mnist_svhn_cifar10/train_mnist_feature_matching.py`): the MNIST script takes the
mean *squared* difference of batch means (``norm="l2"``), the CIFAR/SVHN scripts the mean
*absolute* difference (``norm="l1"``). f is the model's own feature layer (``D.features(x)``) or
any named layer through :class:`FeatureExtractor`.
"""

from __future__ import annotations

import torch

from improved_gan.errors import ImprovedGANError


def feature_matching_loss(
    real_features: torch.Tensor, fake_features: torch.Tensor, norm: str = "l2"
) -> torch.Tensor:
    """mean_u (mean_i f_u(x_i) − mean_j f_u(G(z_j)))² for ``norm="l2"``, or |·| for ``"l1"``.

    Args:
        real_features: (N_real, ...) features of real data (flattened after the batch axis).
        fake_features: (N_fake, ...) features of generated data, same feature shape.
        norm: ``"l2"`` (squared, MNIST reference) or ``"l1"`` (CIFAR/SVHN reference).
    """
    real = real_features.flatten(1).mean(dim=0)
    fake = fake_features.flatten(1).mean(dim=0)
    if real.shape != fake.shape:
        raise ImprovedGANError(
            f"feature matching needs real and fake features of one shape, got {tuple(real_features.shape[1:])} "
            f"and {tuple(fake_features.shape[1:])}"
        )
    diff = real - fake
    if norm == "l2":
        return diff.square().mean()
    if norm == "l1":
        return diff.abs().mean()
    raise ImprovedGANError(f"unknown feature-matching norm {norm!r}; use 'l2' or 'l1'")


class _Stop(Exception):
    def __init__(self, value: torch.Tensor) -> None:
        self.value = value


class FeatureExtractor:
    """Features f(x) from any named layer of a discriminator, via a forward hook.

    ``FeatureExtractor(D, "hidden.4")`` names a submodule as in ``D.named_modules()``; its output is
    the feature. ``extractor(x)`` runs ``D`` and returns ``(D(x), f(x))``; ``extractor.features(x)``
    stops the forward pass at that layer and returns f(x) alone (the layers after it never run).
    """

    def __init__(self, model: torch.nn.Module, layer: str) -> None:
        modules = dict(model.named_modules())
        if not layer or layer not in modules:
            names = ", ".join(n for n in modules if n) or "none"
            raise ImprovedGANError(f"{type(model).__name__} has no layer {layer!r}; its layers: {names}")
        self.model, self.layer, self.module = model, layer, modules[layer]

    def __call__(self, *args, **kwargs):
        captured: list[torch.Tensor] = []

        def hook(module, inputs, output):
            captured.append(output)

        handle = self.module.register_forward_hook(hook)
        try:
            output = self.model(*args, **kwargs)
        finally:
            handle.remove()
        if not captured:
            raise ImprovedGANError(f"layer {self.layer!r} did not run in the forward pass")
        return output, captured[-1]

    def features(self, *args, **kwargs) -> torch.Tensor:
        def hook(module, inputs, output):
            raise _Stop(output)

        handle = self.module.register_forward_hook(hook)
        try:
            self.model(*args, **kwargs)
        except _Stop as stop:
            return stop.value
        finally:
            handle.remove()
        raise ImprovedGANError(f"layer {self.layer!r} did not run in the forward pass")
