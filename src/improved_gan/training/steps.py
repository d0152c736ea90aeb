"""One iteration's two steps, as the reference scripts take them (paper §3 and §5; openai/improved-gan
``mnist_svhn_cifar10/train_mnist_feature_matching.py``, ``train_cifar_minibatch_discrimination.py``):

* :func:`discriminator_step`: D on a labelled, an unlabelled and a freshly generated batch,
  L_supervised + w·L_unsupervised (+ the historical-averaging penalty), EMA update, Adam step;
* :func:`generator_step`: ``g_steps`` G steps with D's weights frozen, on the G loss chosen once
  per run by :func:`generator_loss` (feature matching, minimax, non-saturating).

Under torchrun each process runs these on its slice of the global batch and the gradients are
averaged before every optimizer step (:mod:`improved_gan.utils.distributed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from improved_gan.losses import (
    generator_minimax_loss,
    generator_non_saturating_loss,
    semi_supervised_losses,
    unsupervised_loss,
)
from improved_gan.models import is_joint
from improved_gan.techniques import FeatureExtractor, binary_generator_loss, feature_matching_loss
from improved_gan.training.build import TrainingState
from improved_gan.training.config import TrainConfig
from improved_gan.utils.distributed import DistContext

#: loss_g = g_loss(x_unl, x_unl2): the G loss on this process's generated batch, given the
#: iteration's unlabelled batch (the joint D's real half) and the second unlabelled batch
#: (feature matching's real side).
GeneratorLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def discriminator_logits(
    D: nn.Module, x_lab: torch.Tensor, x_unl: torch.Tensor, x_gen: torch.Tensor, separate: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits_lab, logits_unl, logits_gen). Without cross-example layers one forward pass over
    the concatenation equals three passes; with them (minibatch discrimination) the batches go
    through D separately, as the paper requires. An empty labelled batch is not run."""
    x_gen = x_gen.reshape(len(x_gen), *x_unl.shape[1:])  # a conv G's images, flattened like the data
    if is_joint(D):  # the ImageNet D: one joint pass, real rows first
        logits = D(torch.cat([x_lab, x_unl, x_gen]), num_real=len(x_lab) + len(x_unl))
        return logits.split([len(x_lab), len(x_unl), len(x_gen)])
    if not separate:
        logits = D(torch.cat([x_lab, x_unl, x_gen]))
        return logits.split([len(x_lab), len(x_unl), len(x_gen)])
    l_lab = D(x_lab) if len(x_lab) else x_lab.new_zeros(0, 0)
    return l_lab, D(x_unl), D(x_gen)


def discriminator_step(
    state: TrainingState,
    config: TrainConfig,
    x_lab: torch.Tensor,
    y_lab: torch.Tensor,
    x_unl: torch.Tensor,
    n_gen: int,
    separate: bool,
    ctx: DistContext,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One D step; returns (L_supervised, L_unsupervised, logits of the labelled batch)."""
    D, G = state.D, state.G
    with torch.no_grad():
        x_gen = G(G.sample_noise(n_gen, device=x_unl.device))
    l_lab, l_unl, l_gen = discriminator_logits(D, x_lab, x_unl, x_gen, separate)
    alpha = config.techniques.label_smoothing
    if config.supervised:
        loss_sup, loss_unsup = semi_supervised_losses(l_lab, y_lab, l_unl, l_gen, alpha)
    else:
        loss_sup, loss_unsup = torch.zeros((), device=x_unl.device), unsupervised_loss(l_unl, l_gen, alpha)
    loss_d = loss_sup + config.unlabeled_weight * loss_unsup
    if state.ha_d is not None:
        loss_d = loss_d + state.ha_d.penalty()
    state.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    ctx.average_gradients(state.d_params)
    if state.ema is not None:
        state.ema.update()  # the reference averages the parameters from before this step
    state.opt_d.step()
    if state.ha_d is not None:
        state.ha_d.update()
    return loss_sup, loss_unsup, l_lab


def generator_loss(config: TrainConfig, state: TrainingState, n_gen: int, ctx: DistContext) -> GeneratorLoss:
    """The run's G loss (config ``generator_loss``), chosen once."""
    D, G = state.D, state.G

    def fake_batch(device: torch.device) -> torch.Tensor:
        return G(G.sample_noise(n_gen, device=device))

    if config.generator_loss == "feature_matching":
        features = (
            D.features
            if config.feature_matching_layer is None
            else FeatureExtractor(D, config.feature_matching_layer).features
        )

        def matching(x_unl: torch.Tensor, x_unl2: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                f_real = features(x_unl2)
            f_fake = features(fake_batch(x_unl2.device))
            if ctx.enabled:  # a function of batch means: match the global batch's means
                f_real, f_fake = ctx.global_mean(f_real), ctx.global_mean(f_fake)
            return feature_matching_loss(f_real, f_fake, config.feature_matching_norm)

        return matching

    if config.generator_loss == "minimax":
        loss_of_logits = generator_minimax_loss
    elif config.generator_target != 1.0:  # the ImageNet code's target α/2 (imagenet/build_model.py)
        target = config.generator_target

        def loss_of_logits(logits: torch.Tensor) -> torch.Tensor:
            return binary_generator_loss(torch.logsumexp(logits, dim=1), target)

    else:
        loss_of_logits = generator_non_saturating_loss

    def adversarial(x_unl: torch.Tensor, x_unl2: torch.Tensor) -> torch.Tensor:
        fake = fake_batch(x_unl.device)
        if is_joint(D):  # the joint D judges fakes beside a real batch, as in its D step
            fake = fake.reshape(len(fake), *x_unl.shape[1:])
            return loss_of_logits(D(torch.cat([x_unl, fake]), num_real=len(x_unl))[len(x_unl) :])
        return loss_of_logits(D(fake))

    return adversarial


@contextmanager
def frozen(D: nn.Module, trainable: list[nn.Parameter]) -> Iterator[None]:
    """D's weights get no gradient inside the block; ``trainable`` are trainable again after it."""
    for p in D.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


def generator_step(
    state: TrainingState,
    config: TrainConfig,
    g_loss: GeneratorLoss,
    x_unl: torch.Tensor,
    x_unl2: torch.Tensor,
    ctx: DistContext,
) -> torch.Tensor:
    """``config.g_steps`` G steps with D frozen; returns the last G loss (without the penalty)."""
    with frozen(state.D, state.d_params):
        for _ in range(config.g_steps):
            loss_g = g_loss(x_unl, x_unl2)
            total_g = loss_g if state.ha_g is None else loss_g + state.ha_g.penalty()
            state.opt_g.zero_grad(set_to_none=True)
            total_g.backward()
            ctx.average_gradients(state.G.parameters())
            state.opt_g.step()
            if state.ha_g is not None:
                state.ha_g.update()
    return loss_g
