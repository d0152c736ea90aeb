"""MNIST semi-supervised benchmark (issue: foundation): seconds per epoch and test errors.

Two modes, both writing the ``mnist_ssl`` section of BENCHMARKS.md:

* ``python benchmarks/mnist_ssl.py --epochs 3``: trains the ``mnist-fm`` preset (100 labels,
  seed 1) for a few epochs in a temporary run directory and reports the median seconds per epoch.
* ``python benchmarks/mnist_ssl.py --from-run RUN_DIR``: reads a (possibly still running) run's
  ``metrics.jsonl`` and reports seconds per epoch and the test errors at epochs 10, 50, 100, 300.

Target (issue 2): at most 20 s per epoch on the 2-core CI machine, and the 300-epoch,
100-label run at or under the paper's 93 test errors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import command, commit, machine, write_section  # noqa: E402

MILESTONES = (1, 10, 20, 30, 50, 100, 200, 300)


def summarise(
    records: list[dict], label: str, preset: str = "mnist-fm", seed: int = 1, labels: int = 100
) -> str:
    seconds = [r["seconds"] for r in records]
    lines = [
        f"### MNIST, {labels} labels, seed {seed}, `{preset}` ({label})",
        "",
        f"- command: `{command().split(' --note ')[0]}`",  # the note itself is printed below the table
        f"- commit: `{commit()}`; machine: {machine()}",
        f"- epochs measured: {len(records)}; seconds per epoch (training only, median): "
        f"**{statistics.median(seconds):.1f} s** (min {min(seconds):.1f}, max {max(seconds):.1f}); "
        f"target ≤ 20 s: {'met' if statistics.median(seconds) <= 20 else 'missed'}",
        "",
        "| epoch | test errors (of 10,000) | raw weights' test errors | train error (labelled batches) "
        "| L_unsupervised | G loss (feature matching) |",
        "|---|---|---|---|---|---|",
    ]
    by_epoch = {r["epoch"]: r for r in records}
    shown = [e for e in MILESTONES if e in by_epoch] or [records[-1]["epoch"]]
    if records[-1]["epoch"] not in shown:
        shown.append(records[-1]["epoch"])
    for e in shown:
        r = by_epoch[e]
        raw = r.get("test_errors_raw", "–")
        lines.append(
            f"| {e} | {r['test_errors']} | {raw} | {r['train_error']:.4f} | {r['loss_unsupervised']:.3f} "
            f"| {r['loss_generator']:.3f} |"
        )
    best = min(records, key=lambda r: r["test_errors"])
    lines += [
        "",
        f"Paper (Table 1, 100 labels): 93 ± 6.5 errors. Last epoch here: {records[-1]['test_errors']} "
        f"errors; lowest over epochs (not a selection rule, for reference only): {best['test_errors']} "
        f"at epoch {best['epoch']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--from-run", type=Path, help="summarise an existing run directory instead of training"
    )
    parser.add_argument("--section", default="mnist_ssl", help="BENCHMARKS.md section name")
    parser.add_argument("--note", default="", help="a line added under the table (e.g. the run's commit)")
    parser.add_argument("--write", action="store_true", help="also write the result into BENCHMARKS.md")
    args = parser.parse_args()
    if args.from_run:
        path, config_path = args.from_run / "metrics.jsonl", args.from_run / "config.yaml"
        for needed in (path, config_path):
            if not needed.exists():
                sys.exit(f"error: {needed} not found; pass a run directory made by `improved-gan train`")
        records = [json.loads(s) for s in path.read_text().splitlines() if s.strip()]
        run_config = yaml.safe_load(config_path.read_text())
        label = f"run {args.from_run.name}, {len(records)} of {run_config['epochs']} epochs done"
        body = summarise(records, label, run_config["preset"], run_config["seed"], run_config["labels"])
        if args.note:
            body += "\n\n" + args.note
        print(body)
        if args.write:
            write_section(args.section, body)
        return
    from improved_gan.training import load_config, train

    with tempfile.TemporaryDirectory() as tmp:
        config = load_config("mnist-fm", {"epochs": args.epochs, "run_dir": tmp, "tensorboard": False})
        run = train(config, progress=True)
        records = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    label = f"{args.epochs}-epoch timing run"
    body = summarise(records, label)
    print(body)
    if args.write:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
