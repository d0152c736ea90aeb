"""The figures, numbers and table of the minibatch-divergence analysis (``improved-gan analyze``).

* Curves JS(P^N ‖ Q^N) for P = Bernoulli(p), Q = Bernoulli(q), q ∈ (0, 1), one per batch size N,
  raw (nats or bits) and each scaled to a common maximum of 1 (divided by its maximum over q).
* The same grid as CSV, with KL(P^N ‖ Q^N) = N · KL(P ‖ Q) and the preference divergences.
* A table of how the minibatch JS penalises low-entropy generators: data uniform on 10 symbols;
  generators a point mass, uniform on 5 and uniform on 9 symbols; N = 1, 2, 4, 8.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from improved_gan.analysis.minibatch_divergence import (
    Unit,
    minibatch_js,
    minibatch_kl,
    preference_js,
    preference_kl,
)
from improved_gan.errors import ImprovedGANError

DEFAULT_NS: tuple[int, ...] = (1, 2, 3, 8)
PENALTY_NS: tuple[int, ...] = (1, 2, 4, 8)


def q_grid(points: int = 999) -> np.ndarray:
    """``points`` equally spaced values strictly inside (0, 1): k / (points + 1), k = 1..points."""
    if points < 3:
        raise ImprovedGANError(f"the q grid needs at least 3 points, got {points}")
    return np.linspace(0.0, 1.0, points + 2)[1:-1]


def js_curves(p: float, ns: Sequence[int], qs: np.ndarray, *, unit: Unit = "nats") -> np.ndarray:
    """JS(Bernoulli(p)^N ‖ Bernoulli(q)^N) for each N in ``ns`` and q in ``qs``: shape (len(ns), len(qs))."""
    return np.array([[minibatch_js(p, float(q), n, unit=unit) for q in qs] for n in ns])


def normalise_curves(curves: np.ndarray) -> np.ndarray:
    """Scale each row (one N) to a maximum of 1, the common scale of the analysis' second figure."""
    peak = curves.max(axis=1, keepdims=True)
    return np.divide(curves, peak, out=np.zeros_like(curves), where=peak > 0)


# --------------------------------------------------------------------------------------------------
# Low-entropy generators
# --------------------------------------------------------------------------------------------------
def uniform_on(m: int, k: int = 10) -> np.ndarray:
    """Uniform distribution on the first ``m`` of ``k`` symbols (m = 1: a point mass)."""
    out = np.zeros(k)
    out[:m] = 1.0 / m
    return out


@dataclass(frozen=True)
class PenaltyRow:
    """JS(P^N ‖ G^N) for data P uniform on K symbols and one generator G, at one batch size N."""

    generator: str
    entropy: float  # H(G) in nats
    n: int
    js: float  # JS(P^N ‖ G^N)
    js_per_sample: float  # JS(P^N ‖ G^N) / N
    fraction_of_linear: float  # JS(P^N ‖ G^N) / (N · JS(P ‖ G)); 1 for a KL-like (additive) objective
    relative_to_reference: float  # JS(P^N ‖ G^N) / JS(P^N ‖ R^N), R the reference generator


def low_entropy_penalty_table(
    ns: Sequence[int] = PENALTY_NS, k: int = 10, supports: Sequence[int] = (1, 5, 9), *, unit: Unit = "nats"
) -> list[PenaltyRow]:
    """Penalties of generators uniform on ``supports`` symbols (1 = point mass) against data uniform on k.

    The reference generator R is the one with the largest support (uniform on 9 by default, the
    nearly-right generator), so ``relative_to_reference`` says how many times more the minibatch JS
    penalises a collapsed generator than a nearly-right one at the same N.
    """
    if any(not 1 <= m <= k for m in supports):
        raise ImprovedGANError(f"generator supports must lie in 1..{k}, got {list(supports)}")
    data = uniform_on(k, k)
    reference = uniform_on(max(supports), k)
    rows = []
    for m in supports:
        gen = uniform_on(m, k)
        name = "point mass" if m == 1 else f"uniform on {m}"
        js1 = minibatch_js(data, gen, 1, unit=unit)
        for n in ns:
            js = minibatch_js(data, gen, n, unit=unit)
            ref = minibatch_js(data, reference, n, unit=unit)
            rows.append(
                PenaltyRow(
                    generator=name,
                    entropy=math.log(m),
                    n=n,
                    js=js,
                    js_per_sample=js / n,
                    fraction_of_linear=js / (n * js1) if js1 > 0 else math.nan,
                    relative_to_reference=js / ref if ref > 0 else math.nan,
                )
            )
    return rows


def format_penalty_table(
    rows: Sequence[PenaltyRow], reference: str = "uniform on 9", unit: Unit = "nats"
) -> str:
    """A Markdown table of :func:`low_entropy_penalty_table`."""
    lines = [
        f"| generator | H(G) [nats] | N | JS(P^N‖G^N) [{unit}] | JS/N | JS/(N·JS₁) "
        f"| × penalty of {reference} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.generator} | {r.entropy:.3f} | {r.n} | {r.js:.4f} | {r.js_per_sample:.4f} | "
            f"{r.fraction_of_linear:.3f} | {r.relative_to_reference:.2f} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# The whole report
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MinibatchReport:
    """Files written by :func:`write_minibatch_divergence_report`, and the penalty table."""

    raw_figure: Path
    normalised_figure: Path
    curves_csv: Path
    penalty_csv: Path
    penalty_markdown: Path
    penalty_table: str


def _plot_curves(
    qs: np.ndarray,
    curves: np.ndarray,
    ns: Sequence[int],
    p: float,
    *,
    normalised: bool,
    unit: Unit,
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for n, curve in zip(ns, curves, strict=True):
        ax.plot(qs, curve, label=f"N = {n}", linewidth=1.6)
    ax.axvline(p, color="grey", linestyle=":", linewidth=1.0, label=f"q = p = {p:g}")
    if normalised:
        ax.set_ylabel("JS(P^N ‖ Q^N) / max_q JS(P^N ‖ Q^N)")
        ax.set_title(f"Minibatch JS, each curve scaled to max 1 (p = {p:g})")
        ax.set_ylim(0.0, 1.05)
    else:
        ceiling = math.log(2.0) if unit == "nats" else 1.0
        ax.axhline(
            ceiling,
            color="black",
            linestyle="--",
            linewidth=0.8,
            label="log 2" if unit == "nats" else "1 bit",
        )
        ax.set_ylabel(f"JS(P^N ‖ Q^N) [{unit}]")
        ax.set_title(f"Minibatch JS between Bernoulli({p:g})^N and Bernoulli(q)^N")
        ax.set_ylim(0.0, ceiling * 1.08)
    ax.set_xlabel("q")
    ax.set_xlim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center" if normalised else "lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_minibatch_divergence_report(
    out_dir: str | Path,
    p: float = 0.2,
    ns: Sequence[int] = DEFAULT_NS,
    *,
    q_points: int = 999,
    penalty_ns: Sequence[int] = PENALTY_NS,
    unit: Unit = "nats",
) -> MinibatchReport:
    """Write the two figures (PNG), the curves (CSV) and the low-entropy penalty table (CSV, Markdown).

    Files: ``minibatch_js_raw.png``, ``minibatch_js_normalised.png``, ``minibatch_divergences.csv``
    (columns q, n, js, js_normalised, js_per_sample, kl, preference_js, preference_kl),
    ``low_entropy_penalty.csv`` and ``low_entropy_penalty.md``.
    """
    if not 0.0 < p < 1.0:
        raise ImprovedGANError(f"--p must lie strictly between 0 and 1, got {p}")
    ns = list(ns)
    if not ns or any(isinstance(n, bool) or int(n) != n or n < 1 for n in ns):
        raise ImprovedGANError(f"batch sizes must be positive integers, got {ns}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    qs = q_grid(q_points)
    curves = js_curves(p, ns, qs, unit=unit)
    scaled = normalise_curves(curves)
    report = MinibatchReport(
        raw_figure=out / "minibatch_js_raw.png",
        normalised_figure=out / "minibatch_js_normalised.png",
        curves_csv=out / "minibatch_divergences.csv",
        penalty_csv=out / "low_entropy_penalty.csv",
        penalty_markdown=out / "low_entropy_penalty.md",
        penalty_table="",
    )
    _plot_curves(qs, curves, ns, p, normalised=False, unit=unit, path=report.raw_figure)
    _plot_curves(qs, scaled, ns, p, normalised=True, unit=unit, path=report.normalised_figure)

    with report.curves_csv.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["q", "n", "js", "js_normalised", "js_per_sample", "kl", "preference_js", "preference_kl"]
        )
        for i, n in enumerate(ns):
            for j, q in enumerate(qs):
                writer.writerow(
                    [
                        f"{q:.6g}",
                        n,
                        f"{curves[i, j]:.12g}",
                        f"{scaled[i, j]:.12g}",
                        f"{curves[i, j] / n:.12g}",
                        f"{minibatch_kl(p, q, n, unit=unit):.12g}",
                        f"{preference_js(p, q, n, unit=unit):.12g}",
                        f"{preference_kl(p, q, n, unit=unit):.12g}",
                    ]
                )

    rows = low_entropy_penalty_table(penalty_ns, unit=unit)
    with report.penalty_csv.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "generator",
                "entropy_nats",
                "n",
                "js",
                "js_per_sample",
                "fraction_of_linear",
                "relative_to_uniform_on_9",
            ]
        )
        for r in rows:
            writer.writerow(
                [
                    r.generator,
                    f"{r.entropy:.6g}",
                    r.n,
                    f"{r.js:.12g}",
                    f"{r.js_per_sample:.12g}",
                    f"{r.fraction_of_linear:.12g}",
                    f"{r.relative_to_reference:.12g}",
                ]
            )
    table = format_penalty_table(rows, unit=unit)
    report.penalty_markdown.write_text(
        "Data uniform on 10 symbols; JS between minibatch distributions P^N and G^N.\n"
        "JS/(N·JS₁) = 1 would mean an additive (KL-like) objective; the last column divides by the\n"
        "penalty of the nearly-right generator (uniform on 9) at the same N.\n\n" + table + "\n"
    )
    return MinibatchReport(**{**report.__dict__, "penalty_table": table})
