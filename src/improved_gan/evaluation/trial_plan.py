"""Which images a rater sees: the trial plan of one session.

Without feedback a session is exactly half real (:data:`BALANCED`), which keeps each rater's votes
a 50/50 mix as in the paper. With feedback that would give answers away: a rater told the truth
after each answer could count how many of each kind are left (about 59 % right on 40 images
without looking at one). So feedback sessions draw each trial real or generated independently
with probability 1/2 (:data:`INDEPENDENT`): the past then says nothing about the next image.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from improved_gan.errors import ImprovedGANError

BALANCED = "balanced"
INDEPENDENT = "independent"
#: How the report describes each draw.
DRAWS = {
    BALANCED: "exactly half real (balanced)",
    INDEPENDENT: "each image real or generated independently, p = 0.5 (seeded per session)",
}


def draw_for(feedback: bool) -> str:
    """The draw of a session: independent with feedback (counting must gain nothing), else balanced."""
    return INDEPENDENT if feedback else BALANCED


def images_needed(per_rater: int, n_models: int, draws: Sequence[str]) -> tuple[int, int]:
    """(real images, images per model) a study needs so that no image repeats within a session."""
    if INDEPENDENT in draws:
        return per_rater, -(-per_rater // n_models)
    half = -(-per_rater // 2)
    return half, -(-half // n_models)


def plan_trials(
    rng: random.Random, pools: Mapping[str, Sequence[int]], real: str, n_total: int, draw: str
) -> list[int]:
    """The image ids of one session in order: real ones from ``pools[real]``, generated ones spread
    evenly over the other pools; no image twice; random order."""
    if draw == INDEPENDENT:
        n_real = sum(rng.random() < 0.5 for _ in range(n_total))
    elif draw == BALANCED:
        n_real = n_total // 2 + (rng.random() < 0.5 if n_total % 2 else 0)
    else:
        raise ImprovedGANError(f"unknown trial draw {draw!r}; use one of {sorted(DRAWS)}")
    models = sorted(name for name in pools if name != real)
    n_fake = n_total - n_real
    per_model = dict.fromkeys(models, n_fake // len(models))
    for m in rng.sample(models, n_fake % len(models)):
        per_model[m] += 1
    wanted = {real: n_real, **per_model}
    short = [f"{name} ({len(pools[name])} < {k})" for name, k in wanted.items() if len(pools[name]) < k]
    if short:
        raise ImprovedGANError(
            f"too few images for a session of {n_total}: {', '.join(short)}; lower --per-rater"
        )
    chosen = [i for name, k in wanted.items() for i in rng.sample(list(pools[name]), k)]
    rng.shuffle(chosen)
    return chosen
