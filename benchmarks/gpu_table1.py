"""The whole MNIST Table 1 in one process on one GPU (issue 15, item 3), measured where a GPU is lent.

1. Times ``training.batched.BatchedRuns.iteration`` of the 40 Table 1 members (`mnist-fm-2016`,
   labels 20/50/100/200 × seeds 1–10, real MNIST batches) on the device: float32 with TF32 and
   bf16 autocast, each with the members' own noise streams and with ``member_noise: shared``,
   median of ``--repeats`` timings of ``--iterations`` iterations after a warm-up.
   From it: the whole Table 1 (300 epochs × 600 iterations, all members at once) in minutes,
   beside the 15-minute target and the FLOP/launch estimate of ``batched_seeds.gpu_estimate``.
2. ``--epochs N`` (N > 0): then trains the real thing for N epochs, ``improved-gan reproduce
   table1 --epochs N --set tf32=true --set data_on_device=true`` (batched, evaluation and
   checkpoints included), and reports its seconds per epoch from the runs' ``metrics.jsonl``;
   their text is packed into ``OUT/table1_metrics.tar.gz``.

The markdown goes to stdout and ``OUT/gpu_table1.md`` (``--out``, default ``$OUT``); a session
records it in BENCHMARKS.md with ``--record OUT/gpu_table1.md``. On the device machine (PyTorch
is there, pydantic is not: ``make gpu-wheels`` here first) ``benchmarks/gpu_session.sh`` runs this
and the GPU tests in one call. Here, as a check of the script itself::

    python benchmarks/gpu_table1.py --device cpu --members 2 --iterations 2 --repeats 1 --epochs 1 \
        --labels 100 --seeds 1 --set max_train_examples=1000 --out /tmp/g
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import command, commit, machine, write_section  # noqa: E402
from batched_seeds import TABLE1_MEMBER_ITERATIONS, count_ops, gpu_estimate, member_flops, time_batched  # noqa: E402

from improved_gan.training.build import load_split  # noqa: E402
from improved_gan.training.config import load_config  # noqa: E402

LABELS = (20, 50, 100, 200)
EPOCHS, ITERATIONS_PER_EPOCH = 300, 600
TARGET_MINUTES = 15


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}"
    return machine()


def timing_rows(args, device: torch.device, x, y) -> list[str]:
    precisions = {  # name -> (amp, member_noise)
        "fp32 + TF32": ("off", "own"),
        "fp32 + TF32, `member_noise: shared`": ("off", "shared"),
        "bf16": ("bf16", "own"),
        "bf16, `member_noise: shared`": ("bf16", "shared"),
    }
    times: dict[str, list[float]] = {name: [] for name in precisions}
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    for r in range(args.repeats):
        for name, (amp, noise) in precisions.items():
            times[name].append(
                time_batched(args.members, x, y, args.iterations, args.warmup, amp, device, LABELS, noise)
            )
        print(
            f"repeat {r + 1}: " + ", ".join(f"{n} {1e3 * t[-1]:.1f} ms" for n, t in times.items()), flush=True
        )
    iterations = EPOCHS * ITERATIONS_PER_EPOCH * 40 / args.members  # all 40 members in batches of --members
    rows = [
        f"| precision | ms per iteration of {args.members} members (median) | runs | whole Table 1 (40 × 300 "
        f"epochs) | target ≤ {TARGET_MINUTES} min |",
        "|---|---:|---|---:|:-:|",
    ]
    for name, t in times.items():
        med = statistics.median(t)
        minutes = iterations * med / 60
        rows.append(
            f"| {name} | {1e3 * med:.1f} | {' / '.join(f'{1e3 * v:.1f}' for v in t)} | {minutes:.1f} min | "
            f"{'met' if minutes <= TARGET_MINUTES else '**missed**'} |"
        )
    return rows


def trained_rows(args, out: Path) -> list[str]:
    """``reproduce table1`` for ``--epochs`` epochs; its seconds per epoch from metrics.jsonl."""
    root = out / "table1_runs"
    cmd = [
        sys.executable, "-m", "improved_gan", "reproduce", "table1", "--epochs", str(args.epochs),
        "--runs-root", str(root), "--quiet", "--set", f"device={args.device}", "--set", "tf32=true",
        "--set", "data_on_device=true",
        "--labels", *map(str, args.labels), "--seeds", *map(str, args.seeds),
        *[a for item in args.set for a in ("--set", item)],
    ]  # fmt: skip
    print("$", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, check=False)
    metrics = sorted(root.rglob("metrics.jsonl"))
    with tarfile.open(out / "table1_metrics.tar.gz", "w:gz") as tar:
        for path in [*metrics, *root.rglob("config.yaml")]:
            tar.add(path, arcname=str(path.relative_to(root)))
    records = [json.loads(line) for path in metrics for line in path.read_text().splitlines()]
    if not records:
        return [
            f"`reproduce table1 --epochs {args.epochs}` wrote no metrics (exit status {done.returncode})."
        ]
    by_epoch: dict[int, list[float]] = {}
    for r in records:
        by_epoch.setdefault(r["epoch"], []).append(r["seconds"])
    seconds = [statistics.median(v) for _, v in sorted(by_epoch.items())]
    steady = statistics.median(seconds[1:] or seconds)  # epoch 1 holds the warm-up
    return [
        f"`reproduce table1 --epochs {args.epochs} --set tf32=true --set data_on_device=true` "
        f"(exit status {done.returncode}): "
        f"{len(metrics)} runs, seconds per epoch {', '.join(f'{s:.1f}' for s in seconds)}; at "
        f"{steady:.1f} s per epoch the 300 epochs take **{EPOCHS * steady / 60:.1f} min** "
        f"(target ≤ {TARGET_MINUTES} min: {'met' if EPOCHS * steady / 60 <= TARGET_MINUTES else '**missed**'}).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--epochs", type=int, default=2, help="epochs of the real reproduce table1 run; 0: none"
    )
    parser.add_argument("--labels", type=int, nargs="+", default=list(LABELS), help="of the reproduce run")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(range(1, 11)), help="of the reproduce run"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="of the reproduce run"
    )
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_table1_out")))
    parser.add_argument("--record", type=Path, help="write this earlier output into BENCHMARKS.md and stop")
    args = parser.parse_args()
    if args.record:
        write_section("gpu_table1", args.record.read_text().rstrip("\n"))
        return
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA GPU is visible; run this on a GPU machine (or --device cpu to check the script)")
    args.out.mkdir(parents=True, exist_ok=True)
    x_cpu, y_cpu = load_split(load_config("mnist-fm-2016", {"device": "cpu"}), "train")
    # as `data_on_device: true`: batches cut on the device, no host waits
    x, y = x_cpu.to(device), y_cpu.to(device)
    out = args.out / "gpu_table1.md"
    body = [
        "## The whole Table 1 in one process on one GPU (issue 15, `benchmarks/gpu_table1.py`)",
        "",
        f"- command: `{command()}`; commit: `{commit()}`; device: {device_name(device)}",
        f"- `mnist-fm-2016`, {args.members} members batched (labels {'/'.join(map(str, LABELS))} × seeds), "
        f"real MNIST batches; {args.iterations} timed iterations after {args.warmup} of warm-up, "
        f"{args.repeats} repeats alternating the precisions. Whole Table 1 = 40 members × {EPOCHS} epochs × "
        f"{ITERATIONS_PER_EPOCH} iterations ({TABLE1_MEMBER_ITERATIONS / 1e6:.1f} M member-iterations).",
        "",
        *timing_rows(args, device, x, y),
        "",
    ]
    out.write_text("\n".join(body) + "\n")  # kept if the device's time runs out in what follows
    if args.epochs > 0:
        body += [*trained_rows(args, args.out), ""]
        out.write_text("\n".join(body) + "\n")
    body += [
        "For comparison, the estimate written before any GPU was lent:",
        "",
        *gpu_estimate(member_flops(), [count_ops(mode, x_cpu, y_cpu) for mode in ("own", "shared")]),
    ]
    text = "\n".join(body)
    print(text)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
