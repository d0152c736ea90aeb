"""The MNIST Table 1 runs committed under ``results/``: test errors against epoch, one line per
run (``results/table1_learning_curves.png``), and the last epoch of each run beside the paper's
93 ± 6.5 and Bad GAN's 79.5 ± 9.8 (100 labels).

    python benchmarks/table1_results.py [--write]   # --write: also the BENCHMARKS.md section

Each ``results/<preset>-l<labels>-s<seed>[...]/`` holds a run's ``config.yaml`` and
``metrics.jsonl`` (no checkpoints), finished or not: its last line shows how far it got.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, command, commit, machine, write_section  # noqa: E402

RESULTS = ROOT / "results"


def load_runs() -> list[tuple[str, dict, list[dict]]]:
    runs = []
    for folder in sorted(p for p in RESULTS.iterdir() if (p / "metrics.jsonl").is_file()):
        config = yaml.safe_load((folder / "config.yaml").read_text())
        records = [json.loads(s) for s in (folder / "metrics.jsonl").read_text().splitlines() if s.strip()]
        runs.append((folder.name, config, records))
    return runs


def precision(config: dict) -> str:
    return "bf16 autocast" if config.get("amp") == "bf16" else "fp32"


def plot(runs, path: Path) -> Path:
    """One line per run: bf16 solid, fp32 dashed."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, config, records in runs:
        style = "--" if precision(config) == "fp32" else "-"
        ax.plot([r["epoch"] for r in records], [r["test_errors"] for r in records], style, label=name, lw=1.2)
    ax.axhline(93, color="k", ls="--", lw=0.8, label="paper, 100 labels: 93")
    ax.axhline(79.5, color="grey", ls=":", lw=0.8, label="Bad GAN: 79.5")
    ax.set(xlabel="epoch", ylabel="test errors (of 10,000)", yscale="log", title="MNIST, 100 labels")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary(runs) -> str:
    lines = [
        "### MNIST Table 1 runs committed under `results/` (`benchmarks/table1_results.py`)",
        "",
        f"- command: `{command()}`; commit: `{commit()}`; machine: {machine()}",
        "",
        "| run | preset | precision | epochs done | test errors, last epoch | lowest (not a selection rule) | s/epoch (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    finished: dict[str, list[int]] = {}
    for name, config, records in runs:
        last, best = records[-1], min(records, key=lambda r: r["test_errors"])
        done = f"{last['epoch']} of {config['epochs']}"
        if last["epoch"] == config["epochs"]:
            finished.setdefault(precision(config), []).append(last["test_errors"])
        seconds = statistics.median(r["seconds"] for r in records)
        lines.append(
            f"| {name} | `{config['preset']}` | {precision(config)} | "
            f"{done} | {last['test_errors']} | {best['test_errors']} (epoch {best['epoch']}) | {seconds:.1f} |"
        )
    lines.append("")
    for kind, errors in finished.items():
        spread = f"{statistics.mean(errors):.1f} ± {statistics.stdev(errors):.1f}" if len(errors) > 1 else "–"
        lines.append(
            f"Finished {kind} runs: {len(errors)}; mean ± sample std of their last-epoch test errors: {spread} "
            "(paper, Table 1, 100 labels: 93 ± 6.5 over 10 seeds; Bad GAN: 79.5 ± 9.8)."
        )
    lines += [
        "",
        "![test errors against epoch](results/table1_learning_curves.png)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--write", action="store_true", help="write the table1_results section of BENCHMARKS.md"
    )
    args = parser.parse_args()
    runs = load_runs()
    if not runs:
        sys.exit(f"error: no runs under {RESULTS}; copy a run's config.yaml and metrics.jsonl there")
    print(f"wrote {plot(runs, RESULTS / 'table1_learning_curves.png')}")
    body = summary(runs)
    print(body)
    if args.write:
        write_section("table1_results", body)


if __name__ == "__main__":
    main()
