"""Analysis: exact minibatch divergences (the theory behind minibatch discrimination).

See :mod:`improved_gan.analysis.minibatch_divergence` for the math.
"""

from improved_gan.analysis.minibatch_divergence import (
    js_divergence,
    kl_divergence,
    minibatch_js,
    minibatch_kl,
    preference_js,
    preference_kl,
)

__all__ = [
    "js_divergence",
    "kl_divergence",
    "minibatch_js",
    "minibatch_kl",
    "preference_js",
    "preference_kl",
]
