"""The MNIST SSL iteration against its FLOP limit and a plain PyTorch port (issue 15, item 1).

In one process, alternating, median of ``--repeats``: one iteration of ``mnist-fm-2016`` (one D
step and one G step on real MNIST batches) as ``improved-gan train`` takes it
(``training.steps``), and the same iteration in a **plain port**: the paper's nets written the
obvious way (openai/improved-gan ``mnist_svhn_cifar10/train_mnist_feature_matching.py``): torch's
``weight_norm`` parametrization, ``torch.randn_like`` noise layers, three D passes (labelled,
unlabelled, generated) and ``torch.optim.Adam``. The plain port starts from our
data-dependent-initialised weights and is first checked to compute the same D logits and G
images (to 1e-5). The FLOP limit is the iteration's matmul FLOPs (from the layer shapes,
``batched_seeds.member_flops``) at the matmul rate measured in the same run (1024³, and at the
iteration's own matmul shapes). ``--profile`` adds where our iteration's time goes
(``torch.profiler``).

    python benchmarks/mnist_speed.py [--iterations 30] [--repeats 5] [--threads 2] [--profile] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import command, commit, machine, write_section  # noqa: E402
from batched_seeds import (  # noqa: E402
    D_SIZES,
    G_SIZES,
    SQUARE,
    matmul_rate,
    member_flops,
    single_run,
    time_single,
)

from improved_gan.models import MnistDiscriminator, MnistGenerator  # noqa: E402
from improved_gan.training.build import build_state, load_split  # noqa: E402
from improved_gan.training.config import load_config  # noqa: E402
from improved_gan.training.loop import _batches  # noqa: E402

BATCH = 100


def _weight_normed(v: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, train_scale: bool) -> nn.Module:
    """nn.Linear under torch's weight_norm parametrization holding W = scale·V/‖V‖_row, bias."""
    layer = nn.Linear(v.shape[1], v.shape[0])
    with torch.no_grad():
        layer.weight.copy_(v)
        layer.bias.copy_(bias)
    layer = weight_norm(layer, dim=0)
    g = layer.parametrizations.weight.original0
    with torch.no_grad():
        g.copy_(scale.detach().view(-1, 1))
    g.requires_grad_(train_scale)
    return layer


class PlainD(nn.Module):
    """784-1000-500-250-250-250-10 with Gaussian noise layers, written plainly."""

    def __init__(self, ours: MnistDiscriminator) -> None:
        super().__init__()
        self.hidden = nn.ModuleList(
            _weight_normed(layer.weight_v, layer.scale, layer.bias, False) for layer in ours.hidden
        )
        self.output = _weight_normed(ours.output.weight_v, ours.output.scale, ours.output.bias, True)
        self.sigma_in, self.sigma = ours.input_noise.sigma, ours.noise[0].sigma

    def forward(self, x: torch.Tensor, noise: bool = True, features: bool = False) -> torch.Tensor:
        h = x + self.sigma_in * torch.randn_like(x) if noise else x
        for i, layer in enumerate(self.hidden):
            h = F.relu(layer(h))
            if features and i == len(self.hidden) - 1:
                return h
            if noise:
                h = h + self.sigma * torch.randn_like(h)
        return self.output(h)


class PlainG(nn.Module):
    """z -> dense 500 -> shift-only BN -> softplus -> dense 500 -> BN -> softplus -> weight-normed 784 -> sigmoid."""

    def __init__(self, ours: MnistGenerator) -> None:
        super().__init__()
        net = ours.net
        self.fc1 = nn.Linear(G_SIZES[0], G_SIZES[1], bias=False)
        self.fc2 = nn.Linear(G_SIZES[1], G_SIZES[2], bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(net[0].weight)
            self.fc2.weight.copy_(net[3].weight)
        self.b1 = nn.Parameter(net[1].bias.detach().clone())
        self.b2 = nn.Parameter(net[4].bias.detach().clone())
        self.eps = net[1].eps
        self.out = _weight_normed(net[6].weight_v, net[6].scale, net[6].bias, True)

    def _bn(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + self.eps) + bias

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.softplus(self._bn(self.fc1(z), self.b1))
        h = F.softplus(self._bn(self.fc2(h), self.b2))
        return torch.sigmoid(self.out(h))


def _autocast(amp: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if amp == "bf16" else nullcontext()


class PlainRun:
    """The plain port's models, torch Adam optimizers and iteration."""

    def __init__(self, D: MnistDiscriminator, G: MnistGenerator, lr: float, amp: str) -> None:
        self.D, self.G, self.amp = PlainD(D), PlainG(G), amp
        d_params = [p for p in self.D.parameters() if p.requires_grad]
        self.opt_d = torch.optim.Adam(d_params, lr=lr, betas=(0.5, 0.999), eps=1e-8)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.5, 0.999), eps=1e-8)

    def iteration(self, x_lab, y_lab, x_unl, x_unl2) -> None:
        with _autocast(self.amp):
            with torch.no_grad():
                x_gen = self.G(torch.rand(BATCH, G_SIZES[0]))
            l_lab, l_unl, l_gen = self.D(x_lab), self.D(x_unl), self.D(x_gen)
        l_lab, l_unl, l_gen = l_lab.float(), l_unl.float(), l_gen.float()
        lse_unl, lse_gen = torch.logsumexp(l_unl, 1), torch.logsumexp(l_gen, 1)
        loss_unsup = 0.5 * (-lse_unl.mean() + F.softplus(lse_unl).mean() + F.softplus(lse_gen).mean())
        loss_d = F.cross_entropy(l_lab, y_lab) + loss_unsup
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        with _autocast(self.amp):
            with torch.no_grad():
                f_real = self.D(x_unl2, features=True)
            f_fake = self.D(self.G(torch.rand(BATCH, G_SIZES[0])), features=True)
        loss_g = (f_real.float().mean(0) - f_fake.float().mean(0)).square().mean()
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()


def _state(amp: str, x):
    config = load_config("mnist-fm-2016", {"seed": 1, "device": "cpu", "amp": amp})
    state = build_state(config, torch.device("cpu"), x)
    state.set_lr(config.lr)
    return config, state


def check_plain_port(x) -> float:
    """Largest |difference| of D's logits (no noise) and G's images between ours and the plain port."""
    _, state = _state("off", x)
    plain = PlainRun(state.D, state.G, 1e-3, "off")
    z = torch.rand(BATCH, G_SIZES[0], generator=torch.Generator().manual_seed(0))
    batch = x[:BATCH].flatten(1)
    with torch.no_grad():
        state.D.eval()
        gaps = [
            (state.D(batch) - plain.D(batch, noise=False)).abs().max(),
            (state.G(z) - plain.G(z)).abs().max(),
        ]
        state.D.train()
    return float(max(gaps))


def time_plain(amp: str, x, y, iterations: int, warmup: int) -> float:
    config, state = _state(amp, x)
    plain = PlainRun(state.D, state.G, config.lr, amp)
    stream = _batches(config, x, y).epoch(state.data_rng)
    for i in range(warmup + iterations):
        if i == warmup:
            start = time.perf_counter()
        b = next(stream)
        plain.iteration(b.x_lab, b.y_lab, b.x_unl, b.x_unl2)
    return (time.perf_counter() - start) / iterations


def matmul_shapes(batch: int = BATCH) -> list[tuple[int, int, int]]:
    """(m, k, n) of the iteration's forward matmuls (backward ones have the same FLOPs and
    transposed shapes); used to time the FLOP limit at the iteration's own sizes."""
    d = list(zip(D_SIZES, D_SIZES[1:]))
    g = list(zip(G_SIZES, G_SIZES[1:]))
    shapes = [(batch, a, b) for a, b in g]  # G for the D step
    shapes += [(3 * batch, a, b) for a, b in d]  # D on the three batches
    shapes += [(batch, a, b) for a, b in d[:-1]] * 2  # D's features on real and fake
    shapes += [(batch, a, b) for a, b in g]  # G for the G step
    return shapes


def _category(op: str) -> str:
    """The row of the profile table an aten op's self time goes to."""
    if op in ("mm", "addmm", "bmm", "matmul", "linear", "addmv", "mv"):
        return "matrix multiplies"
    if op in ("normal_", "uniform_", "randn", "randn_like", "rand", "rand_like"):
        return "Gaussian and uniform noise"
    if op.startswith(("_foreach", "Optimizer.")) or op in ("lerp_", "addcmul_", "addcdiv_", "sqrt_"):
        return "Adam (lerp_, addcmul_, addcdiv_, sqrt_, the step's own time)"
    if op in ("copy_", "to", "_to_copy"):
        return "dtype casts and copies"
    return "everything else (elementwise, reductions, norms, autograd)"


def profile(amp: str, x, y, iterations: int) -> dict[str, float]:
    """Self CPU ms per iteration of ours by category."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    iteration = single_run(amp, x, y)

    def run(n: int) -> None:
        for _ in range(n):
            iteration()

    run(5)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        run(iterations)
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        name = _category(event.key.removeprefix("aten::"))
        totals[name] = totals.get(name, 0.0) + event.self_cpu_time_total / 1e3 / iterations
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--amp", nargs="+", choices=["off", "bf16"], default=["off", "bf16"])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = load_split(load_config("mnist-fm-2016", {"device": "cpu"}), "train")
    gap = check_plain_port(x)
    if gap > 1e-5:
        sys.exit(f"the plain port does not compute our nets (largest gap {gap:.2e}); fix it before timing")

    shapes = matmul_shapes()
    dtypes = {"off": torch.float32, "bf16": torch.bfloat16}
    times = {(a, who): [] for a in args.amp for who in ("ours", "plain")}
    rates = {(a, kind): [] for a in args.amp for kind in ("1024³", "shapes")}
    for r in range(args.repeats):  # alternate ours and the plain port, then the matmul rates
        for amp in args.amp:
            times[amp, "ours"].append(time_single(x, y, args.iterations, args.warmup, amp))
            times[amp, "plain"].append(time_plain(amp, x, y, args.iterations, args.warmup))
            rates[amp, "1024³"].append(matmul_rate(dtypes[amp], SQUARE))
            rates[amp, "shapes"].append(matmul_rate(dtypes[amp], shapes))
        print(f"repeat {r + 1}: " + ", ".join(f"{a} {w} {1e3 * t[-1]:.1f} ms" for (a, w), t in times.items()))
    flops = member_flops()
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: statistics.median(v) for k, v in rates.items()}
    rows = [
        "| precision | ms per iteration, ours (median) | runs | plain port (median) | runs | ours faster by "
        "(target ≥ 1.8×) | FLOP limit at 1024³ rate | ours / limit (target ≤ 1.2) | FLOP limit at the "
        "iteration's own matmul shapes | ours / that limit |",
        "|---|---:|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for amp in args.amp:
        ours, plain = med[amp, "ours"], med[amp, "plain"]
        limit, shaped = flops / rate[amp, "1024³"], flops / rate[amp, "shapes"]
        name = "fp32" if amp == "off" else amp
        rows.append(
            f"| {name} | {1e3 * ours:.1f} | {' / '.join(f'{1e3 * t:.1f}' for t in times[amp, 'ours'])} | "
            f"{1e3 * plain:.1f} | {' / '.join(f'{1e3 * t:.1f}' for t in times[amp, 'plain'])} | "
            f"{plain / ours:.2f}× | {1e3 * limit:.1f} ms | {ours / limit:.2f}× | {1e3 * shaped:.1f} ms | "
            f"{ours / shaped:.2f}× |"
        )
        verdicts.append(
            f"{name}: ours is {plain / ours:.2f}× faster than the plain port (target ≥ 1.8×: "
            f"{'met' if plain / ours >= 1.8 else '**missed**'}) and {ours / limit:.2f}× its FLOP limit "
            f"(target ≤ 1.2: {'met' if ours / limit <= 1.2 else '**missed**'})."
        )
    body = [
        "## The MNIST SSL iteration: FLOP limit and a plain PyTorch port (issue 15, `benchmarks/mnist_speed.py`)",
        "",
        f"- command: `{command()}`; commit: `{commit()}`; machine: {machine()}; {args.threads} threads",
        f"- `mnist-fm-2016`, real MNIST batches, {args.iterations} timed iterations after {args.warmup} of "
        f"warm-up, {args.repeats} repeats alternating ours / plain port / matmul rates. Plain port: torch "
        "`weight_norm`, `randn_like` noise, three D passes, `torch.optim.Adam`; checked to give our D logits "
        f"and G images from our weights (largest gap {gap:.1e}).",
        f"- One iteration: {flops / 1e9:.2f} GFLOP of matmuls (from the layer shapes). Matmul rates (median): "
        + "; ".join(
            f"{'fp32' if a == 'off' else a} {rate[a, '1024³'] / 1e9:.0f} GFLOP/s at 1024³, "
            f"{rate[a, 'shapes'] / 1e9:.0f} GFLOP/s at the iteration's shapes"
            for a in args.amp
        )
        + ".",
        "",
        *rows,
        "",
        *verdicts,
    ]
    if args.profile:
        prof = {amp: profile(amp, x, y, args.iterations) for amp in args.amp}
        names = ["fp32" if a == "off" else a for a in args.amp]
        body += [
            "",
            f"Where our iteration's time goes (`torch.profiler`, self CPU ms per iteration over {args.iterations} "
            "iterations after 5 of warm-up; the profiler adds its own overhead):",
            "",
            "| op | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        first = prof[args.amp[0]]
        for category in sorted({c for p in prof.values() for c in p}, key=lambda c: -first.get(c, 0.0)):
            body.append(
                f"| {category} | " + " | ".join(f"{prof[a].get(category, 0.0):.1f}" for a in args.amp) + " |"
            )
        body.append("| **total** | " + " | ".join(f"{sum(prof[a].values()):.1f}" for a in args.amp) + " |")
        for amp in args.amp:
            mm, noise = (
                prof[amp].get("matrix multiplies", 0.0),
                prof[amp].get("Gaussian and uniform noise", 0.0),
            )
            limit = 1e3 * flops / rate[amp, "1024³"]
            body.append(
                f"\n{'fp32' if amp == 'off' else amp}: the matmuls alone take {mm:.1f} ms, {mm / limit:.2f}× the "
                f"1024³ limit ({flops / mm / 1e6:.0f} GFLOP/s at 100–300-row shapes), and the noise draws "
                f"{noise:.1f} ms; with every other op free the iteration would still be at "
                f"{(mm + noise) / limit:.2f}× the limit."
            )
    text = "\n".join(body)
    print(text)
    if args.write:
        write_section("mnist_speed", text)


if __name__ == "__main__":
    main()
