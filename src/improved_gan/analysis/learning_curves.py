"""Learning curves from a run directory's ``metrics.jsonl`` (``improved-gan plot RUN_DIR``).

The trainer appends one JSON object per epoch to ``RUN_DIR/metrics.jsonl``. Every numeric key is
plotted against ``epoch`` (or the record number when a record has no epoch): keys naming a loss
share one panel, keys naming an error or accuracy share another (counts and
rates apart), and every other key (scores,
seconds, learning rates, ...) gets a panel of its own. Nested objects are flattened with dots
(``{"fid": {"mean": 3}}`` becomes ``fid.mean``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from improved_gan.errors import ImprovedGANError
from improved_gan.training.run_dir import METRICS

METRICS_FILE = METRICS
FIGURE_FILE = "learning_curves.png"


def load_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines metrics file: one JSON object per non-blank line, in order."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        raise ImprovedGANError(
            f"no metrics file at {path}; pass a run directory that contains {METRICS_FILE}"
        )
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImprovedGANError(
                    f"{path}, line {lineno}: not valid JSON ({exc.msg}); each line must be one JSON object"
                ) from exc
            if not isinstance(record, dict):
                raise ImprovedGANError(
                    f"{path}, line {lineno}: expected a JSON object, got "
                    f"{type(record).__name__}; each line must be one JSON object"
                )
            records.append(record)
    if not records:
        raise ImprovedGANError(f"{path} is empty; the run has not finished an epoch yet")
    return records


def _numeric_items(record: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _numeric_items(value, prefix=f"{name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            yield name, float(value)


def metric_series(records: list[dict[str, Any]]) -> tuple[str, dict[str, tuple[list[float], list[float]]]]:
    """(x label, {key: (xs, ys)}) for every numeric key; x is ``epoch`` where every record has one."""
    use_epoch = all(
        isinstance(r.get("epoch"), (int, float)) and not isinstance(r.get("epoch"), bool) for r in records
    )
    series: dict[str, tuple[list[float], list[float]]] = {}
    for i, record in enumerate(records, start=1):
        x = float(record["epoch"]) if use_epoch else float(i)
        for key, y in _numeric_items(record):
            if key == "epoch":
                continue
            xs, ys = series.setdefault(key, ([], []))
            xs.append(x)
            ys.append(y)
    return ("epoch" if use_epoch else "record"), series


def group_metrics(
    keys: list[str], series: Mapping[str, tuple[list[float], list[float]]] | None = None
) -> list[tuple[str, list[str]]]:
    """Panels as (title, keys): losses together, errors/accuracies together, every other key alone.

    With ``series``, errors are split by scale so that counts (``test_errors``, ~100-1000) and
    rates (``test_error``, 0-1) never share a y-axis: rates are the keys whose values all lie in
    [0, 1]."""
    losses = [k for k in keys if "loss" in k.lower()]
    errors = [
        k
        for k in keys
        if k not in losses
        and ("error" in k.lower() or "accuracy" in k.lower() or "acc" in re.split(r"[._\W]+", k.lower()))
    ]
    panels: list[tuple[str, list[str]]] = []
    if losses:
        panels.append(("losses", losses))
    rates = [k for k in errors if series is not None and all(0 <= y <= 1 for y in series[k][1])]
    counts = [k for k in errors if k not in rates]
    if rates and counts:
        panels += [("error counts", counts), ("error rates", rates)]
    elif errors:
        panels.append(("errors", errors))
    panels.extend((k, [k]) for k in keys if k not in losses and k not in errors)
    return panels


def plot_learning_curves(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Plot every numeric metric of ``run_dir/metrics.jsonl`` against epoch into one PNG; return its path.

    The figure goes to ``out_dir/learning_curves.png`` (``out_dir`` defaults to ``run_dir``).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ImprovedGANError(f"run directory {run_dir} does not exist; pass the folder the trainer wrote")
    records = load_metrics(run_dir / METRICS_FILE)
    x_label, series = metric_series(records)
    if not series:
        raise ImprovedGANError(f"{run_dir / METRICS_FILE} has no numeric metrics to plot besides the epoch")
    panels = group_metrics(list(series), series)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 1 if len(panels) == 1 else 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.4 * rows), dpi=110, squeeze=False)
    for ax, (title, keys) in zip(axes.flat, panels, strict=False):
        for key in keys:
            xs, ys = series[key]
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, linewidth=1.4, label=key)
        ax.set_title(title)
        ax.set_xlabel(x_label)
        ax.grid(alpha=0.3)
        if len(keys) > 1 or title != keys[0]:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(f"{run_dir.resolve().name}: {len(records)} records")
    fig.tight_layout()

    out = Path(out_dir) if out_dir is not None else run_dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / FIGURE_FILE
    fig.savefig(path)
    plt.close(fig)
    return path
