"""Reproduce the paper's tables: Table 1 (permutation-invariant MNIST, test errors out of
10,000), Table 2 (CIFAR-10, % test error), the SVHN table (% test error) and Table 3 (CIFAR-10
Inception Scores of the technique ablations).

The semi-supervised tables run (or resume, or just collect) one training run per (labels, seed),
then write a Markdown table of mean ± std over seeds beside the paper's numbers (its Tables 1–3),
plus an ensemble row. The paper does not say how its "ensemble of 10" combines members; we average the members' softmax over the K classes and take the argmax. Table 3 trains
one run per preset and seed and scores 50,000 samples of each with the reference-exact Inception
Score (which needs the Inception weights, see ``improved-gan score``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics import score
from improved_gan.training import RunDir, load_config, run_source, train
from improved_gan.training.batched import check_batchable, train_batched
from improved_gan.training.saved_run import run_test_logits
from improved_gan.utils.atomic import write_atomically
from improved_gan.utils.text import plural

# labels -> (single-model mean, std, ensemble mean, std); None where the paper has no number.
PAPER_TABLE1: dict[int, tuple[float, float, float | None, float | None]] = {
    20: (1677, 452, 1134, 445),
    50: (221, 136, 142, 96),
    100: (93, 6.5, 86, 5.6),
    200: (90, 4.2, 81, 4.3),
}
PAPER_TABLE2: dict[int, tuple[float, float, float | None, float | None]] = {
    1000: (21.83, 2.01, 19.22, 0.54),
    2000: (19.61, 2.09, 17.25, 0.66),
    4000: (18.63, 2.32, 15.59, 0.47),
    8000: (17.72, 1.82, 14.87, 0.89),
}
PAPER_SVHN: dict[int, tuple[float, float, float | None, float | None]] = {
    500: (18.44, 4.8, None, None),
    1000: (8.11, 1.3, 5.88, 1.0),
    2000: (6.16, 0.58, None, None),
}
# preset -> (paper Inception Score, std or None where the paper's std is not confirmed), Table 3.
PAPER_TABLE3: dict[str, tuple[float, float | None]] = {
    "table3-all": (8.09, 0.07),
    "table3-vbn+bn": (7.54, None),
    "table3-l+ha": (6.86, 0.06),
    "table3-ls": (6.83, None),
    "table3-l": (4.36, 0.04),
    "table3-mbf": (3.87, None),
}
PAPER_REAL_IS = (11.24, 0.12)


@dataclass(frozen=True)
class SSLTable:
    """One semi-supervised table of the paper: its preset, label counts, epochs and numbers."""

    name: str
    title: str
    preset: str
    labels: tuple[int, ...]
    epochs: int
    paper: dict[int, tuple[float, float, float | None, float | None]]
    percent: bool  # % test error (Table 2, SVHN) rather than test errors out of 10,000 (Table 1)


#: Test-set size behind the paper's counts (Table 1 counts errors, the other tables give rates).
PAPER_TEST_SIZE = {"table1": 10_000}

SSL_TABLES = {
    "table1": SSLTable(
        "table1",
        "Table 1, permutation-invariant MNIST: test errors out of {n_test}",
        "mnist-fm-2016",
        (20, 50, 100, 200),
        300,
        PAPER_TABLE1,
        False,
    ),
    "table2": SSLTable(
        "table2",
        "Table 2, CIFAR-10: test error (%)",
        "cifar10-fm",
        (1000, 2000, 4000, 8000),
        1200,
        PAPER_TABLE2,
        True,
    ),
    "svhn": SSLTable("svhn", "SVHN: test error (%)", "svhn-fm", (500, 1000, 2000), 900, PAPER_SVHN, True),
}


def _mean_std(values: Sequence[float], digits: int = 1) -> str:
    if not values:
        return "–"
    arr = np.asarray(values, dtype=np.float64)
    std = arr.std(ddof=1) if len(arr) > 1 else 0.0
    return f"{arr.mean():.{digits}f} ± {std:.{digits}f}"


def _write_outputs(runs_root: Path, table: str, markdown: str, results: dict) -> None:
    """``<table>.md`` and ``<table>.json`` in ``runs_root``, each replaced atomically."""
    try:
        runs_root.mkdir(parents=True, exist_ok=True)
        for name, text in ((f"{table}.md", markdown), (f"{table}.json", json.dumps(results, indent=2))):
            write_atomically(runs_root / name, text)
    except OSError as exc:
        raise ImprovedGANError(
            f"cannot write the {table} table into {runs_root} ({exc.strerror or exc}); "
            "free disk space, fix the permissions or pass another --runs-root (the runs are kept)"
        ) from None


def _ensure_run(config, train_missing: bool, progress: bool) -> Path | None:
    """The run directory once it has ``config.epochs`` epochs (training or resuming it when
    ``train_missing``), else None."""
    run_dir = config.default_run_dir()
    if RunDir(run_dir).completed_epoch() < config.epochs:
        if not train_missing:
            return None
        train(config, resume=True, progress=progress)
    return run_dir


def _train_missing(configs: Sequence, batched: bool, progress: bool) -> None:
    """Train (or resume) the runs of ``configs`` that are short of their epochs: as batched
    models (:mod:`improved_gan.training.batched`) where the preset allows it, one group per
    completed epoch, else one at a time."""
    short = [(c, RunDir(c.default_run_dir()).completed_epoch()) for c in configs]
    short = [(c, epoch) for c, epoch in short if epoch < c.epochs]
    todo = [c for c, _ in short]
    if not todo:
        return
    if batched:
        try:
            check_batchable(todo)
        except ImprovedGANError:
            batched = False  # e.g. the conv presets of Table 2 and SVHN
    if not batched:
        for config in todo:
            train(config, resume=True, progress=progress)
        return
    groups: dict[int, list] = {}
    for config, epoch in short:
        groups.setdefault(epoch, []).append(config)
    for group in groups.values():
        train_batched(group, resume=True, progress=progress)


def reproduce_ssl_table(
    table: str = "table1",
    labels: Sequence[int] | None = None,
    seeds: Sequence[int] = tuple(range(1, 11)),
    epochs: int | None = None,
    runs_root: str | Path | None = None,
    preset: str | None = None,
    train_missing: bool = True,
    data_dir: str | None = None,
    set_items: Sequence[str] = (),
    progress: bool = True,
    batched: bool = True,
) -> tuple[str, dict]:
    """Train or collect the runs of ``table`` (``table1``, ``table2`` or ``svhn``) and return
    (markdown, results). Writes ``<table>.md`` and ``<table>.json`` into ``runs_root`` (default
    ``runs/<table>``). Runs short of ``epochs`` are resumed when ``train_missing``; otherwise
    they are reported as missing. Defaults (labels, epochs, preset) are the paper's. With
    ``batched`` the MNIST MLP runs (all label counts and seeds) train in one process as one
    batched model; ``batched=False`` trains them one at a time."""
    if table not in SSL_TABLES:
        raise ImprovedGANError(f"unknown table {table!r}; choose one of {', '.join(SSL_TABLES)}")
    spec = SSL_TABLES[table]
    labels = tuple(labels or spec.labels)
    epochs = spec.epochs if epochs is None else epochs  # 0 is refused by the config, not replaced
    preset = preset or spec.preset
    runs_root = Path(runs_root or f"runs/{table}")
    results: dict = {"table": table, "epochs": epochs, "preset": preset, "rows": {}}
    configs = {
        (n_labels, seed): load_config(
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
        for n_labels in labels
        for seed in seeds
    }
    if train_missing:
        _train_missing(list(configs.values()), batched, progress)
    for n_labels in labels:
        members, errors, missing, n_test = [], [], [], None
        for seed in seeds:
            config = configs[n_labels, seed]
            run_dir = config.default_run_dir()
            if RunDir(run_dir).completed_epoch() < config.epochs:
                missing.append(seed)
                continue
            logits, y, _ = run_test_logits(run_dir, data_dir=data_dir)
            members.append(torch.softmax(logits.double(), dim=1))
            errors.append(int((logits.argmax(1) != y).sum()))
            n_test = len(y)
        ensemble = None
        if members:
            ensemble = int((torch.stack(members).mean(0).argmax(1) != y).sum())
        results["rows"][n_labels] = {
            "seeds": list(seeds),
            "errors": errors,
            "ensemble": ensemble,
            "missing": missing,
            "n_test": n_test,
        }
    if not any(r["errors"] for r in results["rows"].values()):
        raise ImprovedGANError(
            f"no finished runs under {runs_root} for epochs={epochs}; run without --collect-only to train them"
        )
    markdown = format_ssl_table(results)
    _write_outputs(runs_root, table, markdown, results)
    return markdown, results


def _paper_cell(value: float | None, std: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:g}" + (f" ± {std:g}" if std is not None else "")


def format_ssl_table(results: dict) -> str:
    """Markdown for the results of :func:`reproduce_ssl_table`, the paper's rows first."""
    spec = SSL_TABLES[results.get("table", "table1")]
    rows = {int(k): v for k, v in results["rows"].items()}
    labels = sorted(rows)

    def measured(r: dict) -> list[float]:
        if not spec.percent:
            return r["errors"]
        return [100.0 * e / r["n_test"] for e in r["errors"]]

    def ensemble(r: dict) -> str:
        if r["ensemble"] is None:
            return "–"
        return f"{100.0 * r['ensemble'] / r['n_test']:.2f}" if spec.percent else str(r["ensemble"])

    digits = 2 if spec.percent else 1
    head = "| Model | " + " | ".join(str(n) for n in labels) + " |\n|---|" + "---|" * len(labels) + "\n"
    paper = "| Paper: our model | " + " | ".join(
        _paper_cell(*spec.paper[n][:2]) if n in spec.paper else "–" for n in labels
    )
    paper_ens = "| Paper: ensemble of 10 | " + " | ".join(
        _paper_cell(*spec.paper[n][2:]) if n in spec.paper else "–" for n in labels
    )
    ours = "| improved-gan (mean ± std over runs) | " + " | ".join(
        _mean_std(measured(rows[n]), digits) for n in labels
    )
    counts = "| runs | " + " | ".join(str(len(rows[n]["errors"])) for n in labels)
    ens = "| improved-gan ensemble (softmax average) | " + " | ".join(ensemble(rows[n]) for n in labels)
    lines = [paper, paper_ens, ours, ens, counts]
    sizes = sorted({r["n_test"] for r in rows.values() if r.get("n_test")})
    name = spec.title.format(n_test=" or ".join(f"{n:,}" for n in sizes) or "10,000")
    epochs = results["epochs"]
    title = (
        f"{name} (preset {results['preset']}, {plural(epochs, 'epoch')}; std is the sample std over runs)\n\n"
    )
    full = PAPER_TEST_SIZE.get(spec.name)
    if full and sizes and sizes != [full]:
        title += f"The test set was capped: counts are not comparable with the paper's, which are out of {full:,}.\n\n"
    return title + head + "\n".join(line + " |" for line in lines) + "\n"


def reproduce_table3(
    presets: Sequence[str] = tuple(PAPER_TABLE3),
    labels: int | None = None,
    seeds: Sequence[int] = (1,),
    epochs: int | None = None,
    runs_root: str | Path = "runs/table3",
    samples: int = 50000,
    train_missing: bool = True,
    data_dir: str | None = None,
    set_items: Sequence[str] = (),
    device: str = "cpu",
    inception_weights: str | None = None,
    extractor: str = "inception",
    progress: bool = True,
) -> tuple[str, dict]:
    """Train or collect one run per preset and seed, score ``samples`` generator samples of each
    with the Inception Score (10 splits), and write ``table3.md`` / ``table3.json``. ``labels``
    changes the label count of the labelled rows (the unsupervised −L rows keep 0)."""
    runs_root = Path(runs_root)
    results: dict = {"table": "table3", "samples": samples, "rows": {}}
    for preset in presets:
        scores, missing = [], []
        for seed in seeds:
            overrides = {"seed": seed, "epochs": epochs, "runs_root": str(runs_root), "data_dir": data_dir}
            if labels is not None and load_config(preset).labels > 0:
                overrides["labels"] = labels
            config = load_config(preset, overrides, list(set_items))
            run_dir = _ensure_run(config, train_missing, progress)
            if run_dir is None:
                missing.append(seed)
                continue
            out = score(
                run_source(run_dir, samples),
                ["is"],
                extractor=extractor,
                device=device,
                inception_weights=inception_weights,
                progress=progress,
            )
            scores.append(out["inception_score_mean"])
            results["epochs"] = config.epochs
        results["rows"][preset] = {"seeds": list(seeds), "is": scores, "missing": missing}
    if not any(r["is"] for r in results["rows"].values()):
        raise ImprovedGANError(
            f"no finished runs under {runs_root}; run without --collect-only to train them"
        )
    markdown = format_table3(results)
    _write_outputs(runs_root, "table3", markdown, results)
    return markdown, results


def format_table3(results: dict) -> str:
    """Markdown for :func:`reproduce_table3`: paper IS beside ours (mean ± std over seeds)."""
    lines = [
        f"Table 3, CIFAR-10 Inception Scores ({results['samples']} samples per run, 10 splits; "
        f"{plural(results.get('epochs', '?'), 'epoch')})\n",
        "| Model | Paper IS | improved-gan IS (mean ± std over runs) | runs |",
        "|---|---|---|---|",
        f"| Real data | {PAPER_REAL_IS[0]:g} ± {PAPER_REAL_IS[1]:g} | – | – |",
    ]
    for preset, row in results["rows"].items():
        paper = PAPER_TABLE3.get(preset)
        cell = _paper_cell(*paper) if paper else "–"
        lines.append(f"| {preset} | {cell} | {_mean_std(row['is'], 2)} | {len(row['is'])} |")
    return "\n".join(lines) + "\n"
