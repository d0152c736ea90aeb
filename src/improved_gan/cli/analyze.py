"""CLI verbs for the analysis: ``analyze minibatch-divergence`` and ``plot RUN_DIR``.

Each is a thin call of a public function: :func:`write_minibatch_divergence_report` and
:func:`plot_learning_curves`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _minibatch_divergence(args: argparse.Namespace) -> int:
    from improved_gan.analysis.minibatch_report import DEFAULT_NS, write_minibatch_divergence_report

    report = write_minibatch_divergence_report(
        args.out, p=args.p, ns=args.n or DEFAULT_NS, q_points=args.q_points, unit=args.unit
    )
    print(report.penalty_table)
    for path in (
        report.raw_figure,
        report.normalised_figure,
        report.curves_csv,
        report.penalty_csv,
        report.penalty_markdown,
    ):
        print(f"wrote {path}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from improved_gan.analysis.learning_curves import plot_learning_curves

    print(f"wrote {plot_learning_curves(args.run_dir, args.out)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    analyze = subparsers.add_parser("analyze", help="theory: exact divergences behind the paper's techniques")
    analyze_sub = analyze.add_subparsers(dest="analysis", metavar="ANALYSIS")
    analyze.set_defaults(func=lambda _args: analyze.print_help() or 2)

    mbd = analyze_sub.add_parser(
        "minibatch-divergence",
        help="JS/KL between minibatch distributions P^N, Q^N: figures, CSV, low-entropy penalty table",
        description="Exact JS(P^N||Q^N) for P = Bernoulli(p), Q = Bernoulli(q), q in (0, 1), one curve per "
        "batch size N, raw and scaled to a common maximum; plus a table of the penalty of low-entropy "
        "generators (data uniform on 10 symbols).",
    )
    mbd.add_argument("--p", type=float, default=0.2, help="data distribution Bernoulli(p) (default 0.2)")
    mbd.add_argument(
        "--n",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="batch sizes (default 1 2 3 8)",
    )
    mbd.add_argument(
        "--out",
        type=Path,
        default=Path("runs/minibatch-divergence"),
        help="output directory (default runs/minibatch-divergence)",
    )
    mbd.add_argument("--q-points", type=int, default=999, help="points of the q grid in (0, 1) (default 999)")
    mbd.add_argument("--unit", choices=["nats", "bits"], default="nats", help="log base (default nats)")
    mbd.set_defaults(func=_minibatch_divergence)

    plot = subparsers.add_parser("plot", help="learning curves of a run directory's metrics.jsonl as PNG")
    plot.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run directory containing metrics.jsonl")
    plot.add_argument("--out", type=Path, default=None, help="output directory (default RUN_DIR)")
    plot.set_defaults(func=_plot)
