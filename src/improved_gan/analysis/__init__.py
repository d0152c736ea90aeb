"""Analysis: exact minibatch divergences (the theory behind minibatch discrimination) and plots.

See :mod:`improved_gan.analysis.minibatch_divergence` for the math,
:mod:`improved_gan.analysis.minibatch_report` for the figures and tables of the analysis, and
:mod:`improved_gan.analysis.learning_curves` for plotting a run's ``metrics.jsonl``.
"""

from improved_gan.analysis.learning_curves import load_metrics, plot_learning_curves
from improved_gan.analysis.minibatch_divergence import (
    js_divergence,
    kl_divergence,
    minibatch_js,
    minibatch_kl,
    preference_js,
    preference_kl,
)
from improved_gan.analysis.minibatch_report import (
    low_entropy_penalty_table,
    write_minibatch_divergence_report,
)

__all__ = [
    "js_divergence",
    "kl_divergence",
    "load_metrics",
    "low_entropy_penalty_table",
    "minibatch_js",
    "minibatch_kl",
    "plot_learning_curves",
    "preference_js",
    "preference_kl",
    "write_minibatch_divergence_report",
]
