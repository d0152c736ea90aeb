"""Speed of the convolutional experiments on this machine (issue 7): seconds per training
iteration of the reference conv models, and what that means per epoch and per full run.

One iteration is what the reference scripts do per minibatch (openai/improved-gan `mnist_svhn_cifar10/train_mnist_feature_matching.py`): a D step
on 100 labelled, 100 unlabelled and 100 generated images, then 1 G step (feature matching) or 3
(minibatch discrimination). For each preset, the full-size models train on synthetic images of
the right shape for one warm-up iteration and then ``--iters`` timed iterations; seconds per
epoch = seconds per iteration × the dataset's iterations per epoch (MNIST 600, CIFAR-10 500,
SVHN 732). Writes the ``conv_speed`` section of BENCHMARKS.md.

    OMP_NUM_THREADS=1 python benchmarks/conv_speed.py --threads 1 --iters 3
    python benchmarks/conv_speed.py --device cuda --threads 8 --iters 20   # on a GPU
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import command, commit, machine, write_section  # noqa: E402

ITERATIONS_PER_EPOCH = {"mnist": 600, "cifar10": 500, "svhn": 732}
PRESETS = ("mnist-mbd", "cifar10-fm", "svhn-fm", "cifar10-mbd", "table3-all")


def time_preset(preset: str, iters: int, device: str, warmup: int = 1) -> dict:
    """Seconds per iteration of ``preset``'s full-size models on synthetic data."""
    import torch

    from improved_gan.data import SemiSupervisedBatches
    from improved_gan.training import load_config
    from improved_gan.training.build import build_state, load_split, resolve_device
    from improved_gan.training.loop import train_epoch

    paper = load_config(preset)
    batch = paper.batch_size
    config = load_config(
        preset,
        {"labels": 100, "device": device},
        ["dataset=synthetic", f"max_train_examples={batch * iters}", f"init_examples={batch}"],
    )
    dev = resolve_device(config.device)
    x, y = load_split(config, "train")
    state = build_state(config, dev, x)
    lab = torch.arange(100)
    warm = SemiSupervisedBatches(x[lab], y[lab], x[:batch], batch, tile=config.label_tiling)
    timed = SemiSupervisedBatches(x[lab], y[lab], x, batch, tile=config.label_tiling)
    for _ in range(warmup):
        train_epoch(state, warm, config, dev, progress=False)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_epoch(state, timed, config, dev, progress=False)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    per_iter = (time.perf_counter() - start) / len(timed)
    per_epoch = per_iter * ITERATIONS_PER_EPOCH[paper.dataset]
    return {
        "preset": preset,
        "model": f"{config.model}, D {'/'.join(map(str, config.conv.d_widths))}",
        "g_steps": config.g_steps,
        "per_iter": per_iter,
        "iters_per_epoch": ITERATIONS_PER_EPOCH[paper.dataset],
        "per_epoch": per_epoch,
        "epochs": paper.epochs,
        "full_days": per_epoch * paper.epochs / 86400,
        "images_per_second": batch / per_iter,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per preset")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first (0: none)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--write", action="store_true", help="also write the result into BENCHMARKS.md")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for preset in args.presets:
        r = time_preset(preset, args.iters, args.device, args.warmup)
        print(f"{preset}: {r['per_iter']:.2f} s/iteration, {r['per_epoch'] / 60:.1f} min/epoch", flush=True)
        rows.append(r)
    lines = [
        f"### Convolutional models, seconds per iteration ({args.device}, {args.threads} thread(s))",
        "",
        f"- command: `{command()}`",
        f"- commit: `{commit()}`; machine: {machine()}",
        f"- {args.iters} timed iteration(s) per preset after {args.warmup} warm-up iteration(s), full-size models, synthetic "
        "images of the right shape; one iteration = a D step on 3 × 100 images, then the preset's G steps.",
        "",
        "| preset | model | G steps | s / iteration | images / s | iterations / epoch | s / epoch | epochs | full run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['model']} | {r['g_steps']} | {r['per_iter']:.2f} | {r['images_per_second']:.1f} | "
            f"{r['iters_per_epoch']} | {r['per_epoch']:.0f} | {r['epochs']} | {r['full_days']:.0f} days |"
        )
    lines += [
        "",
        "Measured on a 2-core machine shared with other jobs, so the numbers are upper bounds for this CPU.\n"
        "On this CPU the paper's conv runs are out of reach (the full-run column); they need a GPU "
        '(README, "Convolutional experiments (GPU)"). Images / s counts the unlabelled batch of 100 per iteration, '
        "as `images_per_second` in metrics.jsonl does.",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("conv_speed", body)


if __name__ == "__main__":
    main()
