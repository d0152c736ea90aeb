"""How often does ``mnist-fm`` (lr 0.003, the reference HEAD) run away? (issue 15, item 4)

Reads the runs committed under ``results/collapse_lr003/<run>/metrics.jsonl`` (``improved-gan
train mnist-fm --labels 100 --seed S --epochs 60``, one directory per seed) and tabulates per seed:
epochs done, the epochs the collapse monitor flagged (``training.monitor.episode_warning``), the
largest feature-matching loss after epoch 5, the lowest and the last test errors, and whether
the run **ran away**: its last test errors are more than twice its lowest.

    python benchmarks/collapse_frequency.py [--min-epochs 60] [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, command, commit, machine, write_section  # noqa: E402

from improved_gan.training.monitor import episode_warning  # noqa: E402

RESULTS = ROOT / "results" / "collapse_lr003"


def _epochs(flagged: list[int]) -> str:
    """1, 2, 5–7 for [1, 2, 5, 6, 7]."""
    spans: list[list[int]] = []
    for e in flagged:
        if spans and e == spans[-1][1] + 1:
            spans[-1][1] = e
        else:
            spans.append([e, e])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in spans) or "none"


def summarize(folder: Path) -> dict:
    records = [
        json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()
    ]
    errors = [r["test_errors"] for r in records]
    lowest = min(errors)
    return {
        "run": folder.name,
        "amp": "bf16" if "bf16" in folder.name else "fp32",
        "epochs": records[-1]["epoch"],
        "flagged": [r["epoch"] for r in records if episode_warning(r) is not None],
        "max_fm": max((r["loss_generator"] for r in records if r["epoch"] > 5), default=float("nan")),
        "lowest": lowest,
        "lowest_epoch": records[errors.index(lowest)]["epoch"],
        "last": errors[-1],
        "ran_away": errors[-1] > 2 * lowest,
        "scale": records[-1].get("g_output_scale"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-epochs", type=int, default=60)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    runs = [summarize(p) for p in sorted(RESULTS.iterdir()) if (p / "metrics.jsonl").is_file()]
    rows = [
        "| run | precision | epochs | epochs flagged by the monitor | max FM loss after epoch 5 | "
        "lowest test errors (epoch) | last | G output scale, last | ran away |",
        "|---|---|---:|---|---:|---|---:|---:|:-:|",
    ]
    for r in runs:
        rows.append(
            f"| {r['run']} | {r['amp']} | {r['epochs']} | {_epochs(r['flagged'])} | {r['max_fm']:.2f} | "
            f"{r['lowest']} ({r['lowest_epoch']}) | {r['last']} | {r['scale']:.2f} | {'**yes**' if r['ran_away'] else 'no'} |"
        )
    full = [r for r in runs if r["epochs"] >= args.min_epochs]
    away = sum(r["ran_away"] for r in full)
    verdict = (
        f"Runs with at least {args.min_epochs} epochs: {len(full)}; ran away: {away} of {len(full)}. "
        + (
            f"The issue asks for at least 8 seeds: **{8 - len(full)} more to go**."
            if len(full) < 8
            else "At least 8 seeds: the issue's bar is met."
        )
    )
    body = "\n".join(
        [
            "## How often `mnist-fm` (lr 0.003) runs away (issue 15, `benchmarks/collapse_frequency.py`)",
            "",
            f"- command: `{command()}`; commit: `{commit()}`; machine: {machine()}",
            "- runs: `improved-gan train mnist-fm --labels 100 --seed S --epochs 60 --set amp=bf16` "
            "(bf16: the precision judged safe in `bf16_verdict`, 1.7× faster here), metrics under "
            "`results/collapse_lr003/`. Test errors with the EMA weights (this preset keeps them). "
            "'Ran away': last test errors more than twice the lowest.",
            "",
            *rows,
            "",
            verdict,
        ]
    )
    print(body)
    if args.write:
        write_section("collapse_frequency", body)


if __name__ == "__main__":
    main()
