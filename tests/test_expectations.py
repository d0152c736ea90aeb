"""The demo's yardstick: the expectation table equals our committed full runs, and the line is
printed only for the recipe it was measured on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from improved_gan.training.config import load_config
from improved_gan.training.expectations import EXPECTATIONS, expectation_line

RESULTS = Path(__file__).resolve().parent.parent / "results"


def _finished_runs(preset: str, labels: int) -> dict[int, dict[int, int]]:
    """seed -> {epoch: test errors} of the committed runs that reached their last epoch."""
    runs = {}
    for folder in sorted(RESULTS.glob(f"{preset}-*l{labels}-s*")):
        records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line]
        config = load_config(str(folder / "config.yaml"))
        if records and records[-1]["epoch"] == config.epochs:
            runs[config.seed] = {r["epoch"]: r["test_errors"] for r in records}
    return runs


@pytest.mark.parametrize("key", list(EXPECTATIONS))
def test_the_table_is_the_committed_runs(key):
    known = EXPECTATIONS[key]
    runs = _finished_runs(*key)
    assert tuple(sorted(runs)) == known.seeds, "add the new finished run's seed and ranges"
    for epoch, (lo, hi) in known.measured.items():
        values = [run[epoch] for run in runs.values()]
        assert (lo, hi) == (min(values), max(values)), f"epoch {epoch}"


def test_the_line_for_the_demo_recipe():
    config = load_config("mnist-fm-2016", {"labels": 100, "seed": 7, "epochs": 10})
    line = expectation_line(config, 10)
    lo, hi = EXPECTATIONS[("mnist-fm-2016", 100)].measured[10]
    assert f"had {lo}–{hi} test errors at epoch 10" in line and "93 ± 6.5" in line
    line = expectation_line(config, 15)  # between measured epochs: the last one reached
    assert "at epoch 10;" in line


def test_no_line_for_another_recipe_or_label_count():
    assert expectation_line(load_config("mnist-fm", {"labels": 100}), 10) is None
    assert expectation_line(load_config("mnist-fm-2016", {"labels": 20}), 10) is None
    changed = load_config("mnist-fm-2016", {"labels": 100}, ["lr=0.003"])
    assert expectation_line(changed, 10) is None
    runtime = load_config("mnist-fm-2016", {"labels": 100, "threads": 1}, ["tensorboard=false"])
    assert expectation_line(runtime, 10) is not None  # runtime settings do not change the numbers
