"""``improved-gan plot RUN_DIR``: learning curves from a run's metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest

from improved_gan.analysis.learning_curves import (
    group_metrics,
    load_metrics,
    metric_series,
    plot_learning_curves,
)
from improved_gan.cli import main
from improved_gan.errors import ImprovedGANError


def _write_run(run_dir: Path, records: list[dict]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in records]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return run_dir


def _records(epochs: int = 6) -> list[dict]:
    out = []
    for e in range(1, epochs + 1):
        rec = {
            "epoch": e,
            "loss_supervised": 2.0 / e,
            "loss_unsupervised": 0.7 + 0.01 * e,
            "loss_generator": 1.0 + 0.1 * e,
            "train_error": 0.5 / e,
            "seconds": 12.5,
            "preset": "mnist-fm",
            "resumed": False,
            "lr": [0.0003],
        }
        if e % 2 == 0:  # evaluated every other epoch, with a nested score
            rec["test_error"] = 0.6 / e
            rec["inception"] = {"mean": 2.0 + e, "std": 0.1}
        out.append(rec)
    return out


def test_series_keep_every_numeric_key_against_epoch() -> None:
    x_label, series = metric_series(_records())
    assert x_label == "epoch"
    assert set(series) == {
        "loss_supervised",
        "loss_unsupervised",
        "loss_generator",
        "train_error",
        "seconds",
        "test_error",
        "inception.mean",
        "inception.std",
    }
    assert series["test_error"][0] == [2.0, 4.0, 6.0]
    assert series["test_error"][1] == pytest.approx([0.3, 0.15, 0.1], rel=1e-15)
    assert series["loss_supervised"][0] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_losses_share_a_panel_errors_share_a_panel_others_alone() -> None:
    keys = [
        "loss_supervised",
        "train_error",
        "seconds",
        "loss_generator",
        "test_error",
        "inception.mean",
        "val_acc",
    ]
    assert group_metrics(keys) == [
        ("losses", ["loss_supervised", "loss_generator"]),
        ("errors", ["train_error", "test_error", "val_acc"]),
        ("seconds", ["seconds"]),
        ("inception.mean", ["inception.mean"]),
    ]


def test_error_counts_and_rates_never_share_an_axis() -> None:
    series = {
        "test_errors": ([1.0, 2.0], [1639.0, 940.0]),
        "test_error": ([1.0, 2.0], [0.1639, 0.094]),
        "train_accuracy": ([1.0, 2.0], [0.5, 1.0]),
        "loss_unsupervised": ([1.0, 2.0], [0.7, 0.3]),
    }
    assert group_metrics(list(series), series) == [
        ("losses", ["loss_unsupervised"]),
        ("error counts", ["test_errors"]),
        ("error rates", ["test_error", "train_accuracy"]),
    ]
    rates_only = {k: series[k] for k in ("test_error", "train_accuracy")}
    assert group_metrics(list(rates_only), rates_only) == [("errors", ["test_error", "train_accuracy"])]


def test_plot_writes_a_png_with_one_panel_per_group(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "run", _records())
    path = plot_learning_curves(run)
    assert path == run / "learning_curves.png"
    # panels: losses, errors, seconds, inception.mean, inception.std -> 5 panels in a 3 x 2 grid
    height, width = matplotlib.image.imread(path).shape[:2]
    assert (width, height) == (round(11.0 * 110), round(3 * 3.4 * 110))


def test_plot_to_another_directory_and_without_epochs(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "run", [{"loss": 1.0}, {"loss": 0.5}])
    assert metric_series(load_metrics(run))[0] == "record"
    path = plot_learning_curves(run, tmp_path / "figs")
    assert path == tmp_path / "figs" / "learning_curves.png" and path.is_file()
    assert not (run / "learning_curves.png").exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ('{"epoch": 1, "loss": 1.0}\n{"epoch": 2, "loss": \n', "line 2: not valid JSON"),
        ("[1, 2, 3]\n", "line 1: expected a JSON object"),
        ('{"epoch": 1, "preset": "mnist"}\n', "no numeric metrics"),
    ],
)
def test_bad_metrics_files_raise_clear_errors(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "metrics.jsonl").write_text(content)
    with pytest.raises(ImprovedGANError, match=match):
        plot_learning_curves(tmp_path)


def test_missing_run_dir_or_metrics_file(tmp_path: Path) -> None:
    with pytest.raises(ImprovedGANError, match="does not exist"):
        plot_learning_curves(tmp_path / "nope")
    with pytest.raises(ImprovedGANError, match="no metrics file"):
        plot_learning_curves(tmp_path)


def test_cli_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _write_run(tmp_path / "run", _records(3))
    assert main(["plot", str(run)]) == 0
    assert (run / "learning_curves.png").is_file()
    assert main(["plot", str(tmp_path / "missing")]) == 1
    assert "improved-gan: error:" in capsys.readouterr().err
