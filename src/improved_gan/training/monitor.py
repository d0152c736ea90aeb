"""Signs of a collapse episode, logged every epoch (issue: lr 0.003 on MNIST has episodes in
which D wins: L_unsupervised falls to ~0.03, the feature-matching loss climbs, more and more
feature-matching units are zero on every generated image, and G's output scale drifts).

:func:`collapse_signals` measures on ``n`` generated images from its own seeded noise, with D in
eval mode (no noise layers), so it draws nothing from the training's random streams: a run
trains exactly as it would without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from improved_gan.techniques import FeatureExtractor
from improved_gan.training.build import TrainingState
from improved_gan.training.config import TrainConfig

#: The first epochs of every lr-0.003 run look like D winning (L_unsupervised 0.06–0.13, 55–65 %
#: of the feature units dead) and most runs recover, so D's signs count only after this epoch.
SETTLED_EPOCH = 5
#: After it, an epoch looks like an episode when L_unsupervised is below this ...
LOW_UNSUPERVISED_LOSS = 0.05
#: ... or the feature-matching loss is above this (≈ 2–5 in a healthy run; 338 in a runaway) ...
HIGH_FM_LOSS = 20.0
#: ... or more than this share of the feature units is dead on every generated image and the
#: share has risen by :data:`DEAD_SHARE_RISE` over the run's lowest since it settled.
HIGH_DEAD_SHARE = 0.55
DEAD_SHARE_RISE = 0.15
#: At any epoch: test errors above this multiple of the run's best so far.
WORSE_THAN_BEST = 1.25


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


def episode_warning(record: dict, history: Sequence[dict] = (), feature_matching: bool = True) -> str | None:
    """A one-line warning when ``record`` (one epoch's metrics) looks like the start or the course
    of a collapse episode, judged against ``history`` (the run's earlier records); the signs and
    thresholds are this module's constants. ``feature_matching``: ``loss_generator`` is the
    feature-matching loss (else it is not judged)."""
    reasons = []
    earlier = [r for r in history if r.get("epoch", 0) < record["epoch"]]
    tested = [r for r in earlier if "test_errors" in r]
    if "test_errors" in record and tested:
        best = min(tested, key=lambda r: r["test_errors"])
        if record["test_errors"] > WORSE_THAN_BEST * best["test_errors"]:
            reasons.append(
                f"test errors {record['test_errors']}, {record['test_errors'] / best['test_errors']:.2f}× "
                f"the best so far ({best['test_errors']} at epoch {best['epoch']})"
            )
    if record["epoch"] > SETTLED_EPOCH:
        if record.get("loss_unsupervised", 1.0) < LOW_UNSUPERVISED_LOSS:
            reasons.append(f"L_unsupervised {record['loss_unsupervised']:.3f} < {LOW_UNSUPERVISED_LOSS}")
        if feature_matching and record.get("loss_generator", 0.0) > HIGH_FM_LOSS:
            reasons.append(f"feature-matching loss {record['loss_generator']:.1f} > {HIGH_FM_LOSS:g}")
        share = record.get("fm_dead_share", 0.0)
        settled = [r["fm_dead_share"] for r in earlier if r["epoch"] > SETTLED_EPOCH and "fm_dead_share" in r]
        lowest = min([*settled, share])
        if share > HIGH_DEAD_SHARE and share >= lowest + DEAD_SHARE_RISE:
            reasons.append(
                f"{100 * share:.0f}% of the feature units dead on all fakes (up from {100 * lowest:.0f}%)"
            )
    if not reasons:
        return None
    return (
        f"epoch {record['epoch']}: collapse episode? "
        + "; ".join(reasons)
        + " (see README, 'Collapse monitor')"
    )
