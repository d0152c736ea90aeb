"""Reproduce the paper's Table 1 (permutation-invariant MNIST, test errors out of 10,000).

Runs (or resumes, or just collects) one training run per (labels, seed), then writes a Markdown
table of mean ± std over seeds beside the paper's numbers, plus an ensemble row. The paper does
not say how its "ensemble of 10" combines members; we average the members' softmax over the K
classes and take the argmax.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from improved_gan.errors import ImprovedGANError
from improved_gan.training.checkpoint import load_checkpoint
from improved_gan.training.config import load_config
from improved_gan.training.evaluate import run_test_logits
from improved_gan.training.trainer import CHECKPOINT, train

# labels -> (single-model mean, std, ensemble mean, std), paper Table 1.
PAPER_TABLE1: dict[int, tuple[float, float, float, float]] = {
    20: (1677, 452, 1134, 445),
    50: (221, 136, 142, 96),
    100: (93, 6.5, 86, 5.6),
    200: (90, 4.2, 81, 4.3),
}


def _completed_epoch(run_dir: Path) -> int:
    if not (run_dir / CHECKPOINT).exists():
        return 0
    return int(load_checkpoint(run_dir / CHECKPOINT)[1]["epoch"])


def _mean_std(values: Sequence[float]) -> str:
    if not values:
        return "–"
    arr = np.asarray(values, dtype=np.float64)
    std = arr.std(ddof=1) if len(arr) > 1 else 0.0
    return f"{arr.mean():.1f} ± {std:.1f}"


def reproduce_table1(
    labels: Sequence[int] = (20, 50, 100, 200),
    seeds: Sequence[int] = tuple(range(1, 11)),
    epochs: int = 300,
    runs_root: str | Path = "runs/table1",
    preset: str = "mnist-fm",
    train_missing: bool = True,
    data_dir: str | None = None,
    set_items: Sequence[str] = (),
    progress: bool = True,
) -> tuple[str, dict]:
    """Train or collect the runs and return (markdown, results). Writes ``table1.md`` and
    ``table1.json`` into ``runs_root``. Runs short of ``epochs`` are resumed when
    ``train_missing``; otherwise they are reported as missing."""
    runs_root = Path(runs_root)
    results: dict = {"epochs": epochs, "preset": preset, "rows": {}}
    for n_labels in labels:
        members, errors, missing = [], [], []
        for seed in seeds:
            config = load_config(
                preset,
                {
                    "labels": n_labels,
                    "seed": seed,
                    "epochs": epochs,
                    "runs_root": str(runs_root),
                    "data_dir": data_dir,
                },
                list(set_items),
            )
            run_dir = config.default_run_dir()
            if _completed_epoch(run_dir) < epochs:
                if not train_missing:
                    missing.append(seed)
                    continue
                train(config, resume=True, progress=progress)
            logits, y, _ = run_test_logits(run_dir, data_dir=data_dir)
            members.append(torch.softmax(logits.double(), dim=1))
            errors.append(int((logits.argmax(1) != y).sum()))
        ensemble = None
        if members:
            ensemble = int((torch.stack(members).mean(0).argmax(1) != y).sum())
        results["rows"][n_labels] = {
            "seeds": list(seeds),
            "errors": errors,
            "ensemble": ensemble,
            "missing": missing,
        }
    if not any(r["errors"] for r in results["rows"].values()):
        raise ImprovedGANError(
            f"no finished runs under {runs_root} for epochs={epochs}; run without --collect-only to train them"
        )
    markdown = format_table1(results)
    runs_root.mkdir(parents=True, exist_ok=True)
    (runs_root / "table1.md").write_text(markdown)
    (runs_root / "table1.json").write_text(json.dumps(results, indent=2))
    return markdown, results


def format_table1(results: dict) -> str:
    labels = sorted(results["rows"])
    head = "| Model | " + " | ".join(str(n) for n in labels) + " |\n|---|" + "---|" * len(labels) + "\n"
    paper = "| Paper: our model | " + " | ".join(
        f"{PAPER_TABLE1[n][0]:g} ± {PAPER_TABLE1[n][1]:g}" if n in PAPER_TABLE1 else "–" for n in labels
    )
    paper_ens = "| Paper: ensemble of 10 | " + " | ".join(
        f"{PAPER_TABLE1[n][2]:g} ± {PAPER_TABLE1[n][3]:g}" if n in PAPER_TABLE1 else "–" for n in labels
    )
    ours = "| improved-gan (mean ± std over runs) | " + " | ".join(
        _mean_std(results["rows"][n]["errors"]) for n in labels
    )
    counts = "| runs | " + " | ".join(str(len(results["rows"][n]["errors"])) for n in labels)
    ens = "| improved-gan ensemble (softmax average) | " + " | ".join(
        "–" if results["rows"][n]["ensemble"] is None else str(results["rows"][n]["ensemble"]) for n in labels
    )
    lines = [paper, paper_ens, ours, ens, counts]
    title = (
        f"Table 1, permutation-invariant MNIST: test errors out of 10,000 "
        f"(preset {results['preset']}, {results['epochs']} epochs; std is the sample std over runs)\n\n"
    )
    return title + head + "\n".join(line + " |" for line in lines) + "\n"
