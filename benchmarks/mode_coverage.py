"""Mode coverage on 2-D Gaussian mixtures, with and without each of the paper's techniques.

    PYTHONPATH=src python benchmarks/mode_coverage.py            # full run (minutes of CPU)
    PYTHONPATH=src python benchmarks/mode_coverage.py --quick    # a smoke run, nothing written

The claim tested (paper §3.2): a plain GAN collapses onto a few modes; minibatch discrimination
(and feature matching) stop the collapse. Data: a ring of 8 Gaussians (radius 2, σ = 0.02) and
a 5×5 grid of 25 Gaussians (spacing 2, σ = 0.05), the standard toy problems of Metz et al. 2017
(unrolled GANs) and Srivastava et al. 2017 (VEEGAN). Model: a small MLP GAN (z ~ N(0, I_8),
G 8-128-128-2 ReLU, D 2-128-128-1 ReLU), Adam lr 1e-3, β = (0.5, 0.999), batches of 100, the
non-saturating G loss, one D step per G step.

Variants: ``plain``; ``+MBD`` (a minibatch layer of 10 kernels × 5 after D's last hidden layer,
the reference's data-dependent init on 500 real points, real and fake in separate passes); ``+FM`` (G matches the batch means of
D's last hidden layer, squared L2); ``+LS`` (real target 0.9); ``+HA`` (historical averaging on
both players, weight chosen by the sweep below); ``+VBN`` (G with virtual batch norm, reference
batch = one fixed batch of 100 noise vectors; the plain G has no normalisation); ``+BN`` (G with
ordinary batch norm, the control for +VBN); ``MBD+LS+VBN`` (the paper's "our methods" mix without
labels).

Metrics on 2,500 samples per run: a sample is *high quality* if it lies within 3σ of its nearest
mode centre; a mode is *covered* if at least 20 high-quality samples are nearest to it (the
convention of VEEGAN and PacGAN). Mean ± std over seeds. Results, table and figure
(``docs/mode_coverage.png``) go to the ``mode_coverage`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, command, commit, write_section  # noqa: E402

from improved_gan.models import data_dependent_init  # noqa: E402
from improved_gan.techniques import (  # noqa: E402
    HistoricalAveraging,
    MinibatchDiscrimination,
    VirtualBatchNorm1d,
    binary_generator_loss,
    feature_matching_loss,
    forward_with_reference,
    one_sided_binary_loss,
)

NOISE_DIM, HIDDEN, BATCH, LR = 8, 128, 100, 1e-3
SAMPLES, MIN_PER_MODE = 2500, 20
KERNELS = 10  # minibatch kernels (× 5 dims); the cost grows with N²·KERNELS


@dataclass(frozen=True)
class Mixture:
    name: str
    centres: torch.Tensor  # (M, 2)
    std: float

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self.centres), (n,), generator=generator)
        return self.centres[idx] + self.std * torch.randn(n, 2, generator=generator)


def ring(k: int = 8, radius: float = 2.0, std: float = 0.02) -> Mixture:
    angles = torch.arange(k) * 2 * math.pi / k
    return Mixture(f"ring of {k}", torch.stack([radius * angles.cos(), radius * angles.sin()], 1), std)


def grid(k: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture:
    axis = (torch.arange(k) - (k - 1) / 2) * spacing
    centres = torch.cartesian_prod(axis, axis)
    return Mixture(f"grid of {k * k}", centres, std)


@dataclass(frozen=True)
class Variant:
    name: str
    mbd: bool = False
    fm: bool = False
    alpha: float = 1.0
    ha: float = 0.0
    g_norm: str = "none"  # none | bn | vbn
    mbd_init: bool = True  # the reference's data-dependent init of the minibatch layer


class Generator(nn.Module):
    def __init__(self, norm: str) -> None:
        super().__init__()

        def norm_layer() -> nn.Module:
            if norm == "bn":
                return nn.BatchNorm1d(HIDDEN)
            if norm == "vbn":
                return VirtualBatchNorm1d(HIDDEN)
            return nn.Identity()

        self.norm = norm
        self.net = nn.Sequential(
            nn.Linear(NOISE_DIM, HIDDEN),
            norm_layer(),
            nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN),
            norm_layer(),
            nn.ReLU(),
            nn.Linear(HIDDEN, 2),
        )
        if norm == "vbn":
            self.register_buffer("reference_noise", torch.randn(BATCH, NOISE_DIM))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.norm == "vbn":
            return forward_with_reference(self.net, self.reference_noise, z)
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, mbd: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU())
        self.minibatch = MinibatchDiscrimination(HIDDEN, num_kernels=KERNELS, kernel_dim=5) if mbd else None
        self.out = nn.Linear(HIDDEN + (KERNELS if mbd else 0), 1)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        f = self.body(x)
        h = f if self.minibatch is None else self.minibatch(f)
        logit = self.out(h).squeeze(1)
        return (logit, f) if return_features else logit


def train_gan(mixture: Mixture, variant: Variant, seed: int, steps: int) -> tuple[Generator, Discriminator]:
    torch.manual_seed(seed)
    data_rng = torch.Generator().manual_seed(10_000 + seed)
    G, D = Generator(variant.g_norm), Discriminator(variant.mbd)
    if variant.mbd and variant.mbd_init:
        with torch.no_grad(), data_dependent_init(D):
            D(mixture.sample(500, data_rng))
    opt_g = torch.optim.Adam(G.parameters(), LR, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), LR, betas=(0.5, 0.999))
    ha_g = ha_d = None
    if variant.ha > 0:
        ha_g, ha_d = HistoricalAveraging(G, variant.ha), HistoricalAveraging(D, variant.ha)
        ha_g.update()
        ha_d.update()
    for _ in range(steps):
        real = mixture.sample(BATCH, data_rng)
        with torch.no_grad():
            fake = G(torch.randn(BATCH, NOISE_DIM))
        # real and fake in separate passes (required with minibatch features)
        loss_d = one_sided_binary_loss(D(real), D(fake), variant.alpha)
        if ha_d is not None:
            loss_d = loss_d + ha_d.penalty()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        if ha_d is not None:
            ha_d.update()

        for p in D.parameters():
            p.requires_grad_(False)
        fake = G(torch.randn(BATCH, NOISE_DIM))
        if variant.fm:
            with torch.no_grad():
                _, f_real = D(mixture.sample(BATCH, data_rng), return_features=True)
            _, f_fake = D(fake, return_features=True)
            loss_g = feature_matching_loss(f_real, f_fake, "l2")
        else:
            loss_g = binary_generator_loss(D(fake))
        if ha_g is not None:
            loss_g = loss_g + ha_g.penalty()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if ha_g is not None:
            ha_g.update()
        for p in D.parameters():
            p.requires_grad_(True)
    return G, D


@torch.no_grad()
def generate(G: Generator, n: int = SAMPLES, seed: int = 0) -> torch.Tensor:
    """``n`` samples in batches of the training batch size (BN uses batch statistics)."""
    G.train()
    rng = torch.Generator().manual_seed(seed)
    return torch.cat([G(torch.randn(BATCH, NOISE_DIM, generator=rng)) for _ in range(n // BATCH)])


def coverage(mixture: Mixture, samples: torch.Tensor) -> tuple[int, float]:
    """(modes covered, share of high-quality samples)."""
    dist = torch.cdist(samples.double(), mixture.centres.double())
    nearest_d, nearest = dist.min(dim=1)
    good = nearest_d < 3 * mixture.std
    counts = torch.bincount(nearest[good], minlength=len(mixture.centres))
    return int((counts >= MIN_PER_MODE).sum()), float(good.double().mean())


def run_grid(mixtures, variants, seeds, steps, log=print) -> dict:
    results: dict = {}
    samples_for_figure: dict = {}
    for mixture in mixtures:
        for variant in variants:
            modes, quality = [], []
            start = time.perf_counter()
            for seed in seeds:
                try:
                    G, _ = train_gan(mixture, variant, seed, steps)
                    samples = generate(G)
                except (RuntimeError, ValueError) as exc:  # a diverged run counts as covering nothing
                    log(f"  {mixture.name} {variant.name} seed {seed}: failed ({exc})")
                    samples = torch.full((SAMPLES, 2), float("nan"))
                if not torch.isfinite(samples).all():
                    m, q = 0, 0.0
                else:
                    m, q = coverage(mixture, samples)
                modes.append(m)
                quality.append(q)
                if seed == seeds[0]:
                    samples_for_figure[(mixture.name, variant.name)] = samples
            seconds = time.perf_counter() - start
            results[(mixture.name, variant.name)] = {"modes": modes, "quality": quality, "seconds": seconds}
            log(
                f"{mixture.name:10s} {variant.name:12s} modes {np.mean(modes):5.2f} ± {np.std(modes, ddof=1) if len(modes) > 1 else 0:4.2f} "
                f"{modes}  high-quality {100 * np.mean(quality):5.1f}%  ({seconds:.0f} s)"
            )
    return {"results": results, "samples": samples_for_figure}


def mbd_diagnostic(mixtures, seed: int, steps: int) -> str:
    """Why +MBD fails here: the same run with and without the reference's data-dependent init of
    the minibatch layer, and after training D's output, the minibatch features (bias removed) on
    one real and one generated batch of 100, and the layer's mean log-scale."""
    lines = [
        "| mixture | data-dependent init | modes | high-quality % | D(real) | D(fake) "
        "| o, real (mean) | o, fake (mean) | mean log-scale |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in mixtures:
        for init in (True, False):
            G, D = train_gan(m, Variant("+MBD", mbd=True, mbd_init=init), seed, steps)
            modes, quality = coverage(m, generate(G))
            with torch.no_grad():
                rng = torch.Generator().manual_seed(1)
                real, fake = m.sample(BATCH, rng), G(torch.randn(BATCH, NOISE_DIM, generator=rng))
                layer = D.minibatch
                o_real = layer(D.body(real))[:, HIDDEN:] - layer.bias
                o_fake = layer(D.body(fake))[:, HIDDEN:] - layer.bias
                lines.append(
                    f"| {m.name} | {'reference' if init else 'none'} | {modes} | {100 * quality:.1f} | "
                    f"{torch.sigmoid(D(real)).mean():.3f} | {torch.sigmoid(D(fake)).mean():.3f} | "
                    f"{o_real.mean():.2f} | {o_fake.mean():.2f} | {layer.log_scale.mean():.2f} |"
                )
    return "\n".join(lines)


def _cell(values, scale=1.0, fmt="{:.1f}") -> str:
    arr = np.asarray(values, dtype=np.float64) * scale
    std = arr.std(ddof=1) if len(arr) > 1 else 0.0
    return f"{fmt.format(arr.mean())} ± {fmt.format(std)}"


def table(mixtures, variants, results) -> str:
    head = "| variant | " + " | ".join(
        f"{m.name}: modes (of {len(m.centres)}) | {m.name}: high-quality %" for m in mixtures
    )
    lines = [head + " |", "|---|" + "---|---|" * len(mixtures)]
    for v in variants:
        cells = []
        for m in mixtures:
            r = results[(m.name, v.name)]
            cells += [_cell(r["modes"]), _cell(r["quality"], 100)]
        lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(mixtures, variants, samples, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(mixtures), len(variants), figsize=(2.1 * len(variants), 2.2 * len(mixtures)), squeeze=False
    )
    for i, m in enumerate(mixtures):
        lim = float(m.centres.abs().max()) + 1.0
        for j, v in enumerate(variants):
            ax = axes[i][j]
            s = samples[(m.name, v.name)].numpy()
            ax.scatter(s[:, 0], s[:, 1], s=1, alpha=0.3, color="tab:blue", rasterized=True)
            ax.scatter(m.centres[:, 0], m.centres[:, 1], s=8, color="tab:red", marker="x")
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
            if i == 0:
                ax.set_title(v.name, fontsize=9)
            if j == 0:
                ax.set_ylabel(m.name, fontsize=9)
    fig.suptitle("2,500 generator samples (blue) and mode centres (red), first seed", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--ha-weights", type=float, nargs="+", default=[0.001, 0.01, 0.1, 1.0])
    parser.add_argument("--ha-seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="200 steps, 1 seed, nothing written")
    parser.add_argument(
        "--diagnose-mbd", action="store_true", help="only the +MBD diagnostic (first seed), its own section"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="also write the result into BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.seeds, args.ha_weights, args.ha_seeds = 200, [1], [0.01], [1]
    mixtures = [ring(), grid()]
    start = time.perf_counter()
    if args.diagnose_mbd:
        md = mbd_diagnostic(mixtures, args.seeds[0], args.steps)
        print(md)
        body = "\n".join(
            [
                "### Why minibatch discrimination fails on these mixtures",
                "",
                f"- command: `PYTHONPATH=src {command()}`; commit `{commit()}`; seed {args.seeds[0]}, "
                f"{args.steps} steps; {(time.perf_counter() - start) / 60:.1f} min",
                "",
                md,
            ]
        )
        if args.write:
            write_section("mode_coverage_mbd", body)
        return

    # 1. Historical-averaging weight: a small sweep; the best mean modes (then quality) wins.
    print("historical-averaging sweep")
    sweep_variants = [Variant(f"+HA λ={w:g}", ha=w) for w in args.ha_weights]
    sweep = run_grid(mixtures, sweep_variants, args.ha_seeds, args.steps)["results"]

    def score(v: Variant) -> tuple[float, float]:
        return (
            float(np.mean([np.mean(sweep[(m.name, v.name)]["modes"]) / len(m.centres) for m in mixtures])),
            float(np.mean([np.mean(sweep[(m.name, v.name)]["quality"]) for m in mixtures])),
        )

    best = max(sweep_variants, key=score)
    print(f"chosen historical-averaging weight: {best.ha:g}")

    # 2. Every technique alone, and the paper's mix, over more seeds.
    variants = [
        Variant("plain"),
        Variant("+MBD", mbd=True),
        Variant("+FM", fm=True),
        Variant("+LS", alpha=0.9),
        Variant(f"+HA ({best.ha:g})", ha=best.ha),
        Variant("+BN", g_norm="bn"),
        Variant("+VBN", g_norm="vbn"),
        Variant("MBD+LS+VBN", mbd=True, alpha=0.9, g_norm="vbn"),
    ]
    print("techniques")
    out = run_grid(mixtures, variants, args.seeds, args.steps)
    total = time.perf_counter() - start
    md = table(mixtures, variants, out["results"])
    sweep_md = table(mixtures, sweep_variants, sweep)
    print(md)
    print(sweep_md)
    print(f"total {total / 60:.1f} min")
    if args.quick:
        return
    fig_path = ROOT / "docs" / "mode_coverage.png"
    figure(mixtures, variants, out["samples"], fig_path)
    body = "\n".join(
        [
            "## Mode coverage on 2-D mixtures (`benchmarks/mode_coverage.py`)",
            "",
            f"- command: `PYTHONPATH=src {command()}`",
            f"- commit: `{commit()}`; machine: 2-core AMD EPYC, CPU only (shared), 1 thread; "
            f"torch {torch.__version__}; total {total / 60:.1f} min",
            f"- {args.steps} steps of batch {BATCH} per run, seeds {args.seeds}; modes covered = modes with ≥ "
            f"{MIN_PER_MODE} of {SAMPLES} samples within 3σ; high-quality = share of samples within 3σ of a mode. "
            "Mean ± std over seeds.",
            "",
            md,
            "",
            f"Historical-averaging weight sweep (seeds {args.ha_seeds}); chosen: **{best.ha:g}**",
            "",
            sweep_md,
            "",
            "![mode coverage](docs/mode_coverage.png)",
        ]
    )
    if args.write:
        write_section("mode_coverage", body)


if __name__ == "__main__":
    main()
