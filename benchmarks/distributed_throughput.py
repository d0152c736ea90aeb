"""Training throughput of one process against two under torchrun (issue 8), MNIST MLP preset.

Trains ``mnist-fm`` (global batch 100) for one epoch of ``--iterations`` iterations on a reduced
training set, in a temporary run directory, as

* one process with 1 thread (``python -m improved_gan train``),
* ``--nproc`` processes with 1 thread each (``torchrun --standalone --nproc_per_node=N``, gloo),
* with ``--with-threads``, also one process with ``--nproc`` threads (the same cores as the
  torchrun run; on a loaded machine its OpenMP threads can spin and take far longer),

and reads the training seconds of the epoch from ``metrics.jsonl`` (rank 0's wall time for the
epoch: D and G steps and the gradient all-reduces; data-dependent init and the test pass are not
counted). Writes the ``distributed_throughput`` section of BENCHMARKS.md.

    python benchmarks/distributed_throughput.py --iterations 300 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, command, commit, machine, write_section  # noqa: E402

BATCH = 100


def run_training(run_dir: Path, iterations: int, processes: int, threads: int) -> float:
    """Seconds of one training epoch of ``iterations`` global batches of 100."""
    train = ["-m", "improved_gan", "train", "mnist-fm", "--run-dir", str(run_dir), "--epochs", "1"]
    train += ["--threads", str(threads), "--device", "cpu", "--quiet"]
    for item in (
        f"max_train_examples={iterations * BATCH}",
        "max_test_examples=1000",
        "tensorboard=false",
        "sample_grid=false",
    ):
        train += ["--set", item]
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(launcher + train, env=env, check=True, capture_output=True, text=True)
    record = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert record.get("processes", 1) == processes
    return float(record["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=300, help="global batches of 100 (one epoch)")
    parser.add_argument("--nproc", type=int, default=2, help="processes of the torchrun run")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each setup, interleaved")
    parser.add_argument(
        "--with-threads", action="store_true", help="also time one process with --nproc threads"
    )
    parser.add_argument("--section", default="distributed_throughput")
    parser.add_argument("--write", action="store_true", help="also write the result into BENCHMARKS.md")
    args = parser.parse_args()
    setups = [
        ("1 process, 1 thread", 1, 1),
        (f"{args.nproc} processes (torchrun, gloo), 1 thread each", args.nproc, 1),
    ]
    if args.with_threads:
        setups.insert(1, (f"1 process, {args.nproc} threads", 1, args.nproc))
    seconds: dict[str, list[float]] = {label: [] for label, _, _ in setups}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for k, (label, processes, threads) in enumerate(setups):
                s = run_training(Path(tmp) / f"run{r}-{k}", args.iterations, processes, threads)
                seconds[label].append(s)
                print(f"{label}: {s:.1f} s for {args.iterations} iterations", flush=True)
    base = min(seconds[setups[0][0]])
    lines = [
        f"### MNIST MLP (mnist-fm), global batch {BATCH}: one process against {args.nproc}",
        "",
        f"- command: `{command()}`",
        f"- commit: `{commit()}`; machine: {machine()}",
        f"- {args.iterations} iterations (one epoch of {args.iterations * BATCH} training images), "
        "training time of the epoch only (rank 0's wall clock, all-reduces included); "
        f"{args.repeats} run(s) of each setup, interleaved; the best run is shown, all runs in the last column.",
        "",
        "| setup | seconds (best) | seconds / 100 iterations | unlabelled images / s | vs 1 process, 1 thread "
        "| all runs (s) |",
        "|---|---|---|---|---|---|",
    ]
    for label, _, _ in setups:
        best = min(seconds[label])
        runs = ", ".join(f"{s:.1f}" for s in seconds[label])
        lines.append(
            f"| {label} | {best:.1f} | {100 * best / args.iterations:.2f} | "
            f"{args.iterations * BATCH / best:.0f} | {base / best:.2f}× | {runs} |"
        )
    lines += [
        "",
        f"This machine has {os.cpu_count()} cores shared with other jobs (load average "
        f"{os.getloadavg()[0]:.1f} at the end of the run), so the {args.nproc} processes compete with "
        "each other and with those jobs for the same cores, and the timings are noisy; the per-process "
        f"batch of {BATCH // args.nproc} also uses a core less efficiently than a batch of {BATCH}. "
        "Throughput with one GPU per process is not measured here.",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
