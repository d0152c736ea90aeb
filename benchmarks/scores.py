"""Scoring benchmark (issue 4): time and peak memory to score 50,000 MNIST-sized images with the
MNIST classifier, ours vs torchmetrics, side by side; plus the real-data scores.

    python benchmarks/scores.py --write         # N = 10,000 and 50,000; also writes the `scores` section
    python benchmarks/scores.py --n 50000

Needs the cached classifiers (``improved-gan classifier train mnist`` / ``fashion-mnist``) and,
for the comparison, torchmetrics (a test dependency). Each measurement runs in a fresh
subprocess; peak memory is the largest resident-set size seen (sampled every 2 ms) minus the
resident size just before scoring, i.e. what scoring adds on top of the images and the model.
The images are the first N MNIST training images (60,000 available), as a uint8 tensor, scored
in batches of 1,000 by both implementations, same classifier, same thread count.

Target (issue 4): faster than torchmetrics, and memory independent of N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import command, commit, machine, write_section  # noqa: E402

IMPLS = ("ours", "torchmetrics", "torchmetrics-fused")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Largest resident-set size above the starting one, sampled by a thread."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def __enter__(self) -> PeakRSS:
        self.start = rss_bytes()
        self.peak = self.start
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def added_mib(self) -> float:
        return (self.peak - self.start) / 2**20


def worker(impl: str, n: int, threads: int, batch_size: int) -> dict:
    import gc

    import torch

    from improved_gan.data import load_idx_dataset
    from improved_gan.metrics.extractors import load_extractor

    torch.set_num_threads(threads)
    images = torch.from_numpy(load_idx_dataset("mnist", "train")[0][:n]).clone()
    extractor = load_extractor("mnist")
    if impl == "ours":
        from improved_gan.metrics.score import score

        def run():
            out = score(images, ["is"], extractor, batch_size=batch_size, progress=False)
            return out["inception_score_mean"], out["inception_score_std"]
    else:
        from torchmetrics.image.inception import InceptionScore

        class Logits(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, x):
                return self.model(x)[1]

        from improved_gan.metrics.classifier import load_classifier

        # "torchmetrics": the classifier module as a user holds it; "torchmetrics-fused": the
        # BN-folded channels-last copy our extractor runs, to show where our speed comes from.
        module = extractor.module if impl == "torchmetrics-fused" else load_classifier("mnist")[0]
        metric = InceptionScore(feature=Logits(module), splits=10)

        def run():
            with torch.no_grad():
                for i in range(0, n, batch_size):
                    metric.update(images[i : i + batch_size])
                torch.manual_seed(0)
                mean, std = metric.compute()
            return float(mean), float(std)

    gc.collect()
    with PeakRSS() as mem:
        start = time.perf_counter()
        mean, std = run()
        seconds = time.perf_counter() - start
    return {"impl": impl, "n": n, "seconds": seconds, "added_mib": mem.added_mib, "mean": mean, "std": std}


def real_scores() -> dict:
    from improved_gan.metrics.classifier import load_classifier
    from improved_gan.metrics.score import score

    out = {}
    for dataset in ("mnist", "fashion-mnist"):
        try:
            _, info = load_classifier(dataset)
        except Exception as exc:  # noqa: BLE001 - report what is missing, go on
            out[dataset] = {"error": str(exc)}
            continue
        test = score(f"{dataset}-test", ["is"], dataset, progress=False)
        train = score(f"{dataset}-train", ["is"], dataset, progress=False)
        fid = score(
            f"{dataset}-train", ["fid", "kid"], dataset, reference=f"{dataset}-test", n=10000, progress=False
        )
        out[dataset] = {
            "classifier": info.describe(),
            "accuracy": info.test_accuracy,
            "epochs": info.epochs,
            "test_is": (test["inception_score_mean"], test["inception_score_std"]),
            "train_is": (train["inception_score_mean"], train["inception_score_std"]),
            "fid_train10k_test": fid["frechet_inception_distance"],
            "kid_train10k_test": (
                fid["kernel_inception_distance_mean"],
                fid["kernel_inception_distance_std"],
            ),
            "profile": test["is_profile"],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[10000, 50000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--write", action="store_true", help="also write the result into BENCHMARKS.md")
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n[0], args.threads, args.batch_size)))
        return

    rows = []
    for n in args.n:
        for impl in IMPLS:
            cmd = [sys.executable, __file__, "--worker", impl, "--n", str(n), "--threads", str(args.threads),
                   "--batch-size", str(args.batch_size)]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
            if done.returncode != 0:
                raise SystemExit(f"{impl} n={n} failed:\n{done.stderr[-2000:]}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(row, flush=True)
    real = real_scores()
    print(json.dumps(real, indent=1))

    lines = [
        "### Scoring: MNIST classifier score, ours vs torchmetrics",
        "",
        f"- command: `{command()}`",
        f"- commit: `{commit()}`; machine: {machine()}; {args.threads} thread(s), batches of {args.batch_size}",
        "- images: the first N MNIST training images (uint8); same cached MNIST classifier for both; "
        "ours = `improved_gan.metrics.score` (streaming IS, which runs a BN-folded channels-last copy of "
        "the classifier); torchmetrics = `InceptionScore(feature=<the classifier's logits>)`; "
        "torchmetrics-fused = torchmetrics given our BN-folded copy; memory = peak resident size added "
        "while scoring (fresh process each)",
        "",
        "| N | implementation | seconds | images/s | peak memory added (MiB) | IS mean | IS std |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['impl']} | {r['seconds']:.1f} | {r['n'] / r['seconds']:,.0f} | "
            f"{r['added_mib']:.1f} | {r['mean']:.4f} | {r['std']:.4f} |"
        )
    by = {(r["impl"], r["n"]): r for r in rows}
    big = max(args.n)
    if ("ours", big) in by and ("torchmetrics", big) in by:
        ratio = by[("torchmetrics", big)]["seconds"] / by[("ours", big)]["seconds"]
        lines += [
            "",
            f"At N = {big:,}: ours takes {by[('ours', big)]['seconds']:.1f} s, torchmetrics "
            f"{by[('torchmetrics', big)]['seconds']:.1f} s ({ratio:.2f}× ours); target faster than "
            f"torchmetrics: {'met' if ratio > 1 else 'missed'}. The IS means differ because torchmetrics "
            "shuffles (here seeded 0) and ours keeps the reference's contiguous splits; its std is ddof=1.",
        ]
        lines += [
            "",
            "Where the speed comes from: the extractor, not the metric. Scoring costs a forward pass of "
            "the classifier per image either way; our extractor runs a copy with batch norm folded into "
            "the convolutions and channels-last weights, and torchmetrics given that same copy "
            "(torchmetrics-fused) is as fast as ours, within this shared machine's noise (repeat runs of "
            "one row vary by up to 1.7×). Memory: ours keeps O(splits × classes) numbers for IS and "
            "O(D²) for FID, whatever N; torchmetrics keeps all N × K logits, which is only 2 MB at "
            "N = 50,000 with 10 classes (200 MB with Inception's 1008), so here both are dominated by "
            "the activations of one batch of 1,000 images and stay flat from 10,000 to 50,000.",
        ]
    lines += ["", "| dataset | classifier | test accuracy | IS of test set (10k) | IS of train set (60k) | "
              "FID train[:10k] vs test | KID train[:10k] vs test |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for dataset, r in real.items():
        if "error" in r:
            lines.append(f"| {dataset} | missing: {r['error']} | | | | | |")
            continue
        lines.append(
            f"| {dataset} | `{r['classifier'].split()[2]}`, {r['epochs']} epochs | {100 * r['accuracy']:.2f}% | "
            f"{r['test_is'][0]:.4f} ± {r['test_is'][1]:.4f} | {r['train_is'][0]:.4f} ± {r['train_is'][1]:.4f} | "
            f"{r['fid_train10k_test']:.4f} | {r['kid_train10k_test'][0]:.6f} ± {r['kid_train10k_test'][1]:.6f} |"
        )
    lines += [
        "",
        "Targets: MNIST test accuracy ≥ 99.3%, Fashion-MNIST ≥ 91%; MNIST score of the real test set "
        "about 9.88 in the literature (maximum 10). Profile: "
        + next((r["profile"] for r in real.values() if "profile" in r), "n/a"),
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("scores", text)


if __name__ == "__main__":
    main()
