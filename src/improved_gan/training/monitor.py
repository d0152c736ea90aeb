"""Signs of a collapse episode, logged every epoch (issue: lr 0.003 on MNIST has episodes in
which D wins: L_unsupervised falls to ~0.03, the feature-matching loss climbs, more and more
feature-matching units are zero on every generated image, and G's output scale drifts).

:func:`collapse_signals` measures on ``n`` generated images from its own seeded noise, with D in
eval mode (no noise layers), so it draws nothing from the training's random streams: a run
trains exactly as it would without it.
"""

from __future__ import annotations

import torch
from torch import nn

from improved_gan.techniques import FeatureExtractor
from improved_gan.training.build import TrainingState
from improved_gan.training.config import TrainConfig

#: An epoch looks like an episode when L_unsupervised is below this ...
LOW_UNSUPERVISED_LOSS = 0.05
#: ... or when more than this share of the feature-matching units is dead on every generated image.
HIGH_DEAD_SHARE = 0.55


def _output_scale(G: nn.Module) -> float | None:
    """Mean |s| of the trainable per-unit scale of G's last weight-normalised layer (None if G has none)."""
    scales = [m.scale for m in G.modules() if isinstance(getattr(m, "scale", None), nn.Parameter)]
    return float(scales[-1].detach().abs().mean()) if scales else None


@torch.no_grad()
def collapse_signals(state: TrainingState, config: TrainConfig, n: int = 100) -> dict[str, float]:
    """``{"fm_dead_share", ["g_output_scale"]}``: the share of D's feature-matching units that
    are ≤ 0 on all ``n`` generated images, and G's output scale."""
    D, G = state.D, state.G
    device = next(G.parameters()).device
    z = G.sample_noise(n, generator=torch.Generator().manual_seed(config.seed + state.epoch)).to(device)
    was_training = D.training
    D.eval()
    try:
        fake = G(z).reshape(n, -1)
        if config.feature_matching_layer is None:
            features = D.features(fake)
        else:
            features = FeatureExtractor(D, config.feature_matching_layer).features(fake)
    finally:
        D.train(was_training)
    out = {"fm_dead_share": float((features.flatten(1) <= 0).all(dim=0).float().mean())}
    scale = _output_scale(G)
    if scale is not None:
        out["g_output_scale"] = scale
    return out


def episode_warning(record: dict) -> str | None:
    """A one-line warning when ``record`` (one epoch's metrics) looks like a collapse episode."""
    reasons = []
    if record.get("loss_unsupervised", 1.0) < LOW_UNSUPERVISED_LOSS:
        reasons.append(f"L_unsupervised {record['loss_unsupervised']:.3f} < {LOW_UNSUPERVISED_LOSS}")
    if record.get("fm_dead_share", 0.0) > HIGH_DEAD_SHARE:
        reasons.append(f"{100 * record['fm_dead_share']:.0f}% of the feature units dead on all fakes")
    if not reasons:
        return None
    return f"epoch {record['epoch']}: collapse episode? " + "; ".join(reasons) + " (D is winning; see README)"
