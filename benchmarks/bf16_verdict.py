"""Is bf16 autocast safe for the MNIST recipe? (issue 15, item 2)

Pairs, seed by seed, the bf16 Table 1 runs committed under ``results/<preset>-bf16-l<labels>-s<seed>/``
with fp32 runs of the same preset, labels and seed under
``results/bf16_verdict/<preset>-fp32-l<labels>-s<seed>/`` (trained to ``--epoch``, 50 by default:
``improved-gan train mnist-fm-2016 --labels 100 --seed S --epochs 50``), and compares their test
errors at a few epochs. bf16 changes the rounding of every matmul, so the two runs of a seed part
ways after the first steps; the question is whether bf16 is worse on average, which needs the
paired differences over seeds.

Verdict: **safe** when every seed has both runs at ``--epoch``, there are at least 3, and the
mean paired difference (bf16 − fp32) is within two standard errors of zero or below it; else
**not shown safe** (and the reason).

    python benchmarks/bf16_verdict.py [--epoch 50] [--write]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, command, commit, machine, write_section  # noqa: E402

RESULTS = ROOT / "results"
FP32 = RESULTS / "bf16_verdict"
EPOCHS = (1, 10, 20, 30, 40, 50)


def errors(folder: Path) -> dict[int, dict]:
    """epoch -> metrics record of a committed run ({} when there is none)."""
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["epoch"]: r for r in records}


def same_recipe(a: Path, b: Path) -> bool:
    """The two runs' configs agree in every setting but the runtime ones (amp, threads, epochs, ...)."""
    from improved_gan.training import TrainConfig, load_config

    free = set(TrainConfig.runtime_fields())
    x, y = (load_config(str(p / "config.yaml")).model_dump() for p in (a, b))
    if x["model"] == "mnist-mlp":  # the conv and imagenet groups do not reach the MLP (their defaults moved)
        free |= {"conv", "imagenet"}
    return all(x[k] == y[k] for k in x if k not in free)


def pairs(preset: str, labels: int) -> dict[int, tuple[dict, dict]]:
    """seed -> (bf16 records, fp32 records) for every seed that has a bf16 run."""
    out = {}
    for folder in sorted(RESULTS.glob(f"{preset}-bf16-l{labels}-s*")):
        seed = int(folder.name.rsplit("-s", 1)[1])
        twin = FP32 / f"{preset}-fp32-l{labels}-s{seed}"
        if twin.is_dir() and not same_recipe(folder, twin):
            raise SystemExit(
                f"{twin} is not {folder}'s recipe in fp32: its config differs beyond runtime settings"
            )
        out[seed] = (errors(folder), errors(twin))
    return out


def _spread(values: list[int]) -> str:
    if len(values) == 1:
        return str(values[0])
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def verdict(diffs: list[int]) -> str:
    if len(diffs) < 3:
        return f"**not shown safe**: {len(diffs)} paired seed(s) reached the epoch, 3 are needed"
    mean = statistics.mean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    text = f"mean paired difference bf16 − fp32 = {mean:+.1f} errors (standard error {se:.1f}, {len(diffs)} seeds)"
    if mean <= 2 * se:
        return (
            f"**safe** at this epoch: {text}, within two standard errors of zero or below it; "
            f"a bf16 penalty smaller than about {mean + 2 * se:.0f} errors is not excluded by so few seeds"
        )
    return f"**not shown safe**: {text}, more than two standard errors worse"


def report(preset: str, labels: int, epoch: int) -> str:
    runs = pairs(preset, labels)
    shown = [e for e in EPOCHS if e <= epoch] + ([epoch] if epoch not in EPOCHS else [])
    lines = [
        f"## bf16 autocast against fp32, {preset}, {labels} labels (issue 15, `benchmarks/bf16_verdict.py`)",
        "",
        f"- command: `{command()}`; commit: `{commit()}`; machine: {machine()}",
        "- bf16: the Table 1 runs under `results/`; fp32: `results/bf16_verdict/` (same preset, labels, "
        "seed and data; `amp: off`). Test errors of 10,000 (the raw weights: this preset keeps no EMA).",
        "",
        "| seed | " + " | ".join(f"epoch {e}: bf16 / fp32" for e in shown) + " |",
        "|---|" + "---|" * len(shown),
    ]
    diffs = []
    for seed, (bf16, fp32) in runs.items():
        cells = [
            f"{bf16[e]['test_errors'] if e in bf16 else '–'} / {fp32[e]['test_errors'] if e in fp32 else '–'}"
            for e in shown
        ]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
        if epoch in bf16 and epoch in fp32:
            diffs.append(bf16[epoch]["test_errors"] - fp32[epoch]["test_errors"])
    both = [s for s, (b, f) in runs.items() if epoch in b and epoch in f]
    if both:
        b = [runs[s][0][epoch]["test_errors"] for s in both]
        f = [runs[s][1][epoch]["test_errors"] for s in both]
        spread = _spread
        lines += [
            "",
            f"At epoch {epoch} over seeds {', '.join(map(str, both))}: bf16 {spread(b)}, fp32 {spread(f)}.",
        ]
    lines += ["", f"Verdict at epoch {epoch}: {verdict(diffs)}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mnist-fm-2016")
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--epoch", type=int, default=50, help="the epoch the verdict is taken at")
    parser.add_argument("--write", action="store_true", help="also write the BENCHMARKS.md section")
    args = parser.parse_args()
    text = report(args.preset, args.labels, args.epoch)
    print(text)
    if args.write:
        write_section("bf16_verdict", text)


if __name__ == "__main__":
    main()
