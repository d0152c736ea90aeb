"""What a run should show at the end: the test errors our own full runs of the same recipe had at
that epoch, and the paper's final figure (Table 1 of Salimans et al. 2016, §5.1).

The ranges are the lowest and highest test errors over our 300-epoch runs committed under
``results/<preset>-bf16-l<labels>-s<seed>/metrics.jsonl`` (a test keeps this table equal to them),
so a user of ``make demo`` can tell a healthy run from a broken one at epoch 10 already.
"""

from __future__ import annotations

from dataclasses import dataclass

from improved_gan.training.config import TrainConfig


@dataclass(frozen=True)
class Expectation:
    preset: str
    labels: int
    paper: str  # the paper's final figure for this row
    seeds: tuple[int, ...]  # the seeds of our runs behind ``measured``
    measured: dict[int, tuple[int, int]]  # epoch -> (lowest, highest) test errors over those runs


#: (preset, labels) -> our measured ranges; epochs checked by tests/test_expectations.py.
EXPECTATIONS: dict[tuple[str, int], Expectation] = {
    ("mnist-fm-2016", 100): Expectation(
        "mnist-fm-2016",
        100,
        "93 ± 6.5 test errors after 300 epochs (Table 1)",
        (1, 2, 3, 4, 5),
        {
            1: (2181, 2560),
            5: (965, 1805),
            10: (491, 955),
            20: (233, 363),
            50: (126, 181),
            100: (109, 166),
            200: (104, 132),
            300: (94, 121),
        },
    ),
}


def _same_recipe(config: TrainConfig) -> bool:
    """``config`` is its preset at its labels, seed and length, up to runtime settings."""
    changes = config.preset_changes()
    return changes is not None and set(changes) <= {"seed_data"}


def expectation_line(config: TrainConfig, epoch: int) -> str | None:
    """``our 300-epoch runs (seeds …) had L–H test errors at epoch E; the paper: …`` for a run of
    a preset we have measured (E: the last measured epoch up to ``epoch``), else None."""
    known = EXPECTATIONS.get((config.preset or "", config.labels))
    if known is None or config.dataset != "mnist" or not _same_recipe(config):
        return None
    reached = [e for e in known.measured if e <= epoch]
    if not reached:
        return f"the paper: {known.paper}"
    at = max(reached)
    lo, hi = known.measured[at]
    seeds = ", ".join(map(str, known.seeds))
    return f"our 300-epoch runs (seeds {seeds}) had {lo}–{hi} test errors at epoch {at}; the paper: {known.paper}"
