"""Seeds batched against single runs: ms per iteration per member on this machine (issue 15, item 3).

Alternates, in one process, a single run's iteration (``training.steps``: one D step and one G
step of ``mnist-fm-2016`` on the real MNIST) with ``training.batched.BatchedRuns.iteration`` for
K = 2, 4 and 8 members, median of ``--repeats`` timings of ``--iterations`` iterations each after
a warm-up. Prints the FLOPs of one member's iteration (counted from the layer shapes) and the
fp32 matmul rate measured in the same run, and from them and the ops of one iteration (counted
here for ``member_noise`` own and shared) an estimate of the whole Table 1 (4 label counts × 10
seeds × 300 epochs × 600 iterations) on a GPU; ``--estimate`` prints (and with ``--write``
records, as BENCHMARKS section ``gpu_estimate``) that estimate alone, without the timings.

    python benchmarks/batched_seeds.py [--iterations 20] [--repeats 3] [--threads 2] [--amp off bf16] [--write]
    python benchmarks/batched_seeds.py --estimate [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import command, commit, machine, write_section  # noqa: E402

from improved_gan.training.batched import BatchedRuns, _stack_batches, build_members  # noqa: E402
from improved_gan.training.build import build_state, load_split  # noqa: E402
from improved_gan.training.config import load_config  # noqa: E402
from improved_gan.training.loop import _batches  # noqa: E402
from improved_gan.training.steps import discriminator_step, generator_loss, generator_step  # noqa: E402
from improved_gan.utils.distributed import SINGLE  # noqa: E402

D_SIZES = (784, 1000, 500, 250, 250, 250, 10)
G_SIZES = (100, 500, 500, 784)
TABLE1_MEMBER_ITERATIONS = 4 * 10 * 300 * 600


def member_flops(batch: int = 100) -> float:
    """Matmul FLOPs (2 per multiply-add) of one iteration of one member: D step = G forward on a
    batch, D forward and backward on 3 batches (weight gradients everywhere, input gradients
    below the first layer); G step = D's features of a real batch, G forward and backward, D's
    features of the fake batch forward and input-gradient backward."""
    d = [a * b for a, b in zip(D_SIZES, D_SIZES[1:])]
    g = [a * b for a, b in zip(G_SIZES, G_SIZES[1:])]
    d_hidden = sum(d[:-1])
    d_step = 2 * batch * sum(g) + 2 * 3 * batch * (3 * sum(d) - d[0])
    g_step = 2 * batch * d_hidden + 2 * batch * (3 * sum(g) - g[0]) + 2 * batch * 2 * d_hidden
    return float(d_step + g_step)


# H200 (SXM) data-sheet figures and this estimate's assumptions, not measurements.
H200_TF32_DENSE = 494e12  # FLOP/s
H200_FP32 = 67e12  # FLOP/s without tensor cores (TF32 off, torch's default for matmuls)
H200_HBM = 4.8e12  # bytes/s
MATMUL_EFFICIENCY = 0.5  # of the dense TF32 peak, for (K·300)×1000-sized batched GEMMs
HBM_EFFICIENCY = 0.7
ELEMENTWISE_PASSES = 12  # 4-byte reads and writes per activation element, forward and backward, unfused


def activation_elements(batch: int = 100) -> int:
    """Activation elements of one member's iteration: D on 3 batches, D's features on 2, G on 2."""
    d_units, g_units = sum(D_SIZES), sum(G_SIZES[1:])
    return 3 * batch * d_units + 2 * batch * (d_units - D_SIZES[-1]) + 2 * batch * g_units


@dataclass(frozen=True)
class OpCount:
    """Kernel-launching ops (aten ops that are not views) of one ``BatchedRuns.iteration``
    (the optimizers' profiler marks left out),
    counted on the CPU for K = 2, 3 and 4 members: ``fixed + per_member · K``."""

    member_noise: str
    fixed: int
    per_member: int

    def at(self, members: int) -> int:
        return self.fixed + self.per_member * members


def _iteration_ops(k: int, member_noise: str, x, y) -> int:
    configs, members, streams = members_of([(1 + i, 100) for i in range(k)], x, y, "off", CPU, member_noise)
    batched = BatchedRuns(configs, members, CPU)
    batched.set_lr(configs[0].lr)
    batched.iteration(*_stack_batches([next(s) for s in streams], CPU))  # Adam's state exists now

    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.ops += not func.is_view and func.namespace != "profiler"  # record_function marks
            return func(*args, **(kwargs or {}))

    batches = _stack_batches([next(s) for s in streams], CPU)
    with Count():
        batched.iteration(*batches)
    return Count.ops


def count_ops(member_noise: str, x, y) -> OpCount:
    """The iteration's ops as ``fixed + per_member · K`` from counts at K = 2, 3 and 4 (a member
    adds the same ops whatever K is; the assert checks that the three counts lie on one line)."""
    two, three, four = (_iteration_ops(k, member_noise, x, y) for k in (2, 3, 4))
    assert three - two == four - three, (two, three, four)
    return OpCount(member_noise, two - 2 * (three - two), three - two)


def gpu_estimate(
    flops: float, counts: list[OpCount], members: int = 40, launch_s: tuple[float, float] = (6e-6, 1.5e-6)
) -> list[str]:
    """Table 1 in one process on one H200, from FLOPs, bytes and kernel launches (not measured):
    one op per launch (foreach ops launch a few on a GPU), the op counts measured here on the CPU."""
    compute = TABLE1_MEMBER_ITERATIONS * flops / (MATMUL_EFFICIENCY * H200_TF32_DENSE)
    memory = (
        TABLE1_MEMBER_ITERATIONS
        * activation_elements()
        * ELEMENTWISE_PASSES
        * 4
        / (HBM_EFFICIENCY * H200_HBM)
    )
    iterations = TABLE1_MEMBER_ITERATIONS / members
    lines = [
        f"**Estimate, not a measurement** (no GPU has been lent yet): the whole Table 1 as {members} "
        f"members in one process on one H200. Matmuls: {compute:.0f} s at {MATMUL_EFFICIENCY:.0%} of the "
        f"{H200_TF32_DENSE / 1e12:.0f} TFLOP/s dense TF32 peak (TF32 must be switched on: `--set tf32=true` "
        f"or `--set amp=bf16`; plain fp32 at the same efficiency would take "
        f"{TABLE1_MEMBER_ITERATIONS * flops / (MATMUL_EFFICIENCY * H200_FP32):.0f} s). Unfused elementwise "
        f"traffic: {activation_elements() / 1e6:.2f} M activation elements per member-iteration × "
        f"{ELEMENTWISE_PASSES} passes × 4 bytes = "
        f"{TABLE1_MEMBER_ITERATIONS * activation_elements() * ELEMENTWISE_PASSES * 4 / 1e12:.0f} TB, "
        f"{memory:.0f} s at {HBM_EFFICIENCY:.0%} of {H200_HBM / 1e12:.1f} TB/s. Kernel launches: the ops of "
        f"one iteration, counted on the CPU (`count_ops`), × {iterations / 1e3:.0f} k iterations, at 6 µs "
        "each eager and 1.5 µs in a CUDA graph, added to the rest (no overlap assumed):",
        "",
        f"| member_noise | ops per iteration (fixed + per member × K) | at K = {members} | launches, eager | "
        "total, eager | total, CUDA graph (not written) | target ≤ 15 min |",
        "|---|---|---:|---:|---:|---:|:-:|",
    ]
    for c in counts:
        eager, graphed = (iterations * c.at(members) * t for t in launch_s)
        total = (compute + memory + eager) / 60
        lines.append(
            f"| {c.member_noise} | {c.fixed} + {c.per_member} × K | {c.at(members)} | {eager:.0f} s | "
            f"{total:.1f} min | {(compute + memory + graphed) / 60:.1f} min | "
            f"{'met' if total <= 15 else '**missed**'} (eager) |"
        )
    return lines


def matmul_rate(dtype: torch.dtype, shapes: list[tuple[int, int, int]], repeats: int = 20) -> float:
    """FLOP/s of ``repeats`` rounds of the (m, k) @ (k, n) matmuls ``shapes`` in ``dtype``."""
    pairs = [(torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)) for m, k, n in shapes]
    for a, b in pairs:
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        for a, b in pairs:
            a @ b
    flops = 2 * sum(m * k * n for m, k, n in shapes) * repeats
    return flops / (time.perf_counter() - start)


SQUARE = [(1024, 1024, 1024)]
CPU = torch.device("cpu")


def members_of(
    runs: list[tuple[int, int]], x, y, amp: str, device: torch.device = CPU, member_noise: str = "own"
):
    """Configs, training states and batch streams of ``mnist-fm-2016`` runs, one per (seed, labels),
    each member's noise generator on ``device`` started where a single run's would be (or, with
    ``member_noise="shared"``, member 0's for all)."""
    configs = [
        load_config(
            "mnist-fm-2016",
            {"seed": s, "labels": n, "device": device.type, "amp": amp, "member_noise": member_noise},
        )
        for s, n in runs
    ]
    members, streams = build_members(configs, device, x, y)
    return configs, members, [s.epoch(m.data_rng) for s, m in zip(streams, members)]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a timer's end on a GPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def single_run(amp: str, x, y) -> Callable[[], None]:
    """One plain run of seed 1 (``training.steps``); each call of the returned function is one
    iteration (a D step and a G step) on its next batch."""
    config = load_config("mnist-fm-2016", {"seed": 1, "device": "cpu", "amp": amp})
    state = build_state(config, torch.device("cpu"), x)
    state.set_lr(config.lr)
    g_loss = generator_loss(config, state, 100, SINGLE)
    stream = _batches(config, x, y).epoch(state.data_rng)

    def iteration() -> None:
        b = next(stream)
        discriminator_step(state, config, b.x_lab, b.y_lab, b.x_unl, 100, False, SINGLE)
        generator_step(state, config, g_loss, b.x_unl, b.x_unl2, SINGLE)

    return iteration


def time_single(x, y, iterations: int, warmup: int, amp: str) -> float:
    """Seconds per iteration of one plain run (training.steps)."""
    iteration = single_run(amp, x, y)
    for i in range(warmup + iterations):
        if i == warmup:
            start = time.perf_counter()
        iteration()
    return (time.perf_counter() - start) / iterations


def time_batched(
    k: int,
    x,
    y,
    iterations: int,
    warmup: int,
    amp: str,
    device: torch.device = CPU,
    labels: tuple[int, ...] = (100,),
    member_noise: str = "own",
) -> float:
    """Seconds per iteration of K members batched (all K members' steps): seeds 1.. for each of
    ``labels`` in turn until there are K."""
    runs = [(1 + i // len(labels), labels[i % len(labels)]) for i in range(k)]
    configs, members, streams = members_of(runs, x, y, amp, device, member_noise)
    batched = BatchedRuns(configs, members, device)
    batched.set_lr(configs[0].lr)
    for i in range(warmup + iterations):
        if i == warmup:
            synchronize(device)
            start = time.perf_counter()
        batched.iteration(*_stack_batches([next(s) for s in streams], device))
    synchronize(device)
    return (time.perf_counter() - start) / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--members", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--amp", nargs="+", choices=["off", "bf16"], default=["off", "bf16"])
    parser.add_argument("--write", action="store_true")
    parser.add_argument(
        "--estimate", action="store_true", help="only the GPU estimate (section gpu_estimate)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = load_split(load_config("mnist-fm-2016", {"device": "cpu"}), "train")
    counts = [count_ops(mode, x, y) for mode in ("own", "shared")]
    if args.estimate:
        text = "\n".join(
            [
                "## The whole Table 1 on one GPU: estimate from FLOPs and counted ops (issue 15, "
                "`benchmarks/batched_seeds.py --estimate`)",
                "",
                f"- command: `{command()}`; commit: `{commit()}`; machine: {machine()} (ops counted on its CPU)",
                "- Replaces the launch count of section `batched_seeds`, which was guessed (250 + 16 × K).",
                "",
                *gpu_estimate(member_flops(), counts),
            ]
        )
        print(text)
        if args.write:
            write_section("gpu_estimate", text)
        return

    sizes = [1, *args.members]
    times: dict[tuple[str, int], list[float]] = {(a, k): [] for a in args.amp for k in sizes}
    rates: dict[str, list[float]] = {"off": [], "bf16": []}
    for r in range(args.repeats):  # alternate: each precision's single run and each K, then the matmul rates
        for amp in args.amp:
            times[amp, 1].append(time_single(x, y, args.iterations, args.warmup, amp))
            for k in args.members:
                times[amp, k].append(time_batched(k, x, y, args.iterations, args.warmup, amp) / k)
        rates["off"].append(matmul_rate(torch.float32, SQUARE))
        rates["bf16"].append(matmul_rate(torch.bfloat16, SQUARE))
        print(
            f"repeat {r + 1}: "
            + ", ".join(f"{a} K={k} {1e3 * t[-1]:.1f} ms/member" for (a, k), t in times.items())
        )
    flops = member_flops()
    rate = {a: statistics.median(v) for a, v in rates.items()}
    limit_ms = {a: 1e3 * flops / rate[a] for a in rate}
    rows = [
        "| precision | members K | ms per iteration per member (median) | runs | per-member speed-up over "
        "one fp32 run | time / FLOP limit of its precision |",
        "|---|---:|---:|---|---:|---:|",
    ]
    single = statistics.median(times[args.amp[0], 1])
    for (amp, k), t in times.items():
        med = statistics.median(t)
        runs = " / ".join(f"{1e3 * v:.1f}" for v in t)
        rows.append(
            f"| {'fp32' if amp == 'off' else amp} | {k} | {1e3 * med:.1f} | {runs} | {single / med:.2f}× | "
            f"{1e3 * med / limit_ms[amp]:.2f}× |"
        )
    verdicts = []
    for amp in args.amp:
        alone = statistics.median(times[amp, 1])
        ups = {k: alone / statistics.median(times[amp, k]) for k in args.members}
        verdicts.append(
            f"{'fp32' if amp == 'off' else amp}: per member, K = {', '.join(map(str, ups))} run at "
            f"{', '.join(f'{u:.2f}×' for u in ups.values())} the speed of one run of the same precision."
        )
    fastest = min(statistics.median(t) for t in times.values())
    body = [
        "## Seeds batched in one process against single runs (issue 15, `benchmarks/batched_seeds.py`)",
        "",
        f"- command: `{command()}`; commit: `{commit()}`; machine: {machine()}; {args.threads} threads",
        f"- `mnist-fm-2016`, real MNIST batches; K = 1 is a single run (`training.steps`), K > 1 "
        f"`BatchedRuns.iteration` (time of all K members / K); bf16 = `amp: bf16` (autocast, fp32 master "
        f"weights); {args.iterations} timed iterations after {args.warmup} of warm-up, {args.repeats} repeats "
        "alternating.",
        f"- One member's iteration: {flops / 1e9:.2f} GFLOP of matmuls (from the layer shapes); matmul rates "
        f"in this run (1024³, median): fp32 {rate['off'] / 1e9:.0f} GFLOP/s, bf16 {rate['bf16'] / 1e9:.0f} "
        f"GFLOP/s, so the FLOP limit is {limit_ms['off']:.1f} ms in fp32 and {limit_ms['bf16']:.1f} ms in bf16.",
        "",
        *rows,
        "",
        *verdicts,
        "Stacking does not reduce the FLOPs, and a CPU core gains little from the larger (K·300 × 1000) "
        "matmuls; batching is for the GPU, where one member leaves the chip idle.",
        "",
        "Whole Table 1 = 4 label counts × 10 seeds × 300 epochs × 600 iterations = "
        f"{TABLE1_MEMBER_ITERATIONS / 1e6:.1f} M member-iterations = "
        f"{TABLE1_MEMBER_ITERATIONS * flops / 1e15:.1f} PFLOP of matmuls; at this machine's fastest per-member "
        f"speed above it would take {TABLE1_MEMBER_ITERATIONS * fastest / 86400:.1f} days.",
        "",
        *gpu_estimate(flops, counts),
    ]
    text = "\n".join(body)
    print(text)
    if args.write:
        write_section("batched_seeds", text)


if __name__ == "__main__":
    main()
