"""Seeds batched: K runs of the MNIST MLP trained in one process as one stacked model (paper §5.1,
Table 1: 10 seeds per label count; openai/improved-gan `mnist_svhn_cifar10/train_mnist_feature_matching.py`).

The K members' parameters, Adam moments and EMA shadows are stacked on a leading run axis; each
layer is one batched matmul over all members, and one loss (the sum of the members' losses) gives
every member exactly its own gradient. A member keeps everything a single run has: its labelled
subset (its ``seed_data`` and label count), its batch permutations (its own ``data_rng``) and its
noise (its own generator, drawn in the order a single run draws the global torch RNG: G's z,
then D's noise layers input first). Member k therefore takes the same random numbers as
``improved-gan train`` with its seed; only the summation order of a batched matmul differs from
a plain one (about 1e-7 relative per step), and that difference grows over many steps as it
does between any two machines. ``member_noise: shared`` trades that for speed on a GPU: each
noise tensor of all members is one draw from member 0's stream (one kernel launch where there
were K), so members keep independent noise but not their single runs' draws.

Every member writes its own run directory, exactly as a single run: ``config.yaml``, one
``metrics.jsonl`` line per epoch, sample grids and a checkpoint that ``train --resume`` (batched
or not), ``evaluate`` and ``predict`` read. Supported: the ``mnist-mlp`` model with batch-norm G,
feature matching on D's own features, no minibatch discrimination, no historical averaging, no
label smoothing, and members that differ only in seed, labelled-subset seed and label count.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from improved_gan.data import SemiSupervisedBatches
from improved_gan.errors import ImprovedGANError
from improved_gan.models import MnistDiscriminator, MnistGenerator
from improved_gan.training.build import (
    TrainingState,
    build_state,
    check_checkpoint,
    load_split,
    resolve_device,
    shape_models,
    test_batch_size,
)
from improved_gan.training.config import TrainConfig, validate_config
from improved_gan.training.loop import (
    _batches,
    check_finite_losses,
    epoch_record,
    interactive,
    loss_sums,
    sample_grid_noise,
    save_epoch,
)
from improved_gan.training.monitor import episode_warning
from improved_gan.training.optim import ReferenceAdam
from improved_gan.training.run_dir import RunDir

#: Settings in which the members of one batched run may differ.
MEMBER_FIELDS = ("seed", "seed_data", "labels", "run_dir")

Params = dict[str, torch.Tensor]


def check_batchable(configs: Sequence[TrainConfig]) -> None:
    """Refuse a set of runs that cannot train as one stacked model, naming the setting and the fix."""
    if not configs:
        raise ImprovedGANError("no runs to train; give at least one seed (e.g. --seeds 1 2 3)")
    first = configs[0]
    fix = "train these runs one at a time (improved-gan train PRESET --seed N)"
    t = first.techniques
    unsupported = [  # (setting as the user writes it, is unsupported)
        (f"model: {first.model}", first.model != "mnist-mlp"),
        ("labels: 0 (an unsupervised run)", not first.supervised),
        ("techniques.minibatch_discrimination: true", t.minibatch_discrimination),
        (f"techniques.historical_averaging: {t.historical_averaging}", t.historical_averaging > 0),
        (f"techniques.label_smoothing: {t.label_smoothing}", t.label_smoothing != 1.0),
        ("techniques.vbn: true", t.vbn),
        (f"generator_loss: {first.generator_loss}", first.generator_loss != "feature_matching"),
        (f"feature_matching_norm: {first.feature_matching_norm}", first.feature_matching_norm != "l2"),
        (f"feature_matching_layer: {first.feature_matching_layer}", first.feature_matching_layer is not None),
        ("compile: true", first.compile),
        (f"score_every: {first.score_every}", bool(first.score_every)),
    ]
    bad = [name for name, is_bad in unsupported if is_bad]
    if bad:
        raise ImprovedGANError(
            f"batched seeds support the MNIST MLP with plain feature matching only; this run has {bad[0]}; {fix}"
        )
    base = first.model_dump(exclude=set(MEMBER_FIELDS))
    for config in configs[1:]:
        other = config.model_dump(exclude=set(MEMBER_FIELDS))
        differ = sorted(k for k in base if base[k] != other[k])
        if differ:
            raise ImprovedGANError(
                f"batched runs may differ only in {', '.join(MEMBER_FIELDS)}; seeds {first.seed} and "
                f"{config.seed} differ in {', '.join(differ)}; {fix}"
            )
    dirs = [str(c.run_dir or c.default_run_dir()) for c in configs]
    twice = sorted({d for d in dirs if dirs.count(d) > 1})
    if twice:
        raise ImprovedGANError(
            f"two batched runs would share the run directory {twice[0]}; give each seed once"
        )


class MemberNoise:
    """N(0, σ²) and U(0, 1) draws for all members at once: member k's from its own generator, or,
    when all members hold one generator (``member_noise: shared``), all of them in one draw."""

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        self.generators = list(generators)
        self.shared = len(self.generators) > 1 and all(g is self.generators[0] for g in self.generators)

    def _fill(self, out: torch.Tensor, draw: Callable[[torch.Tensor, torch.Generator], None]) -> torch.Tensor:
        if self.shared:
            draw(out, self.generators[0])
        else:
            for k, g in enumerate(self.generators):
                draw(out[k], g)
        return out

    def add_normal(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """x + N(0, σ²) with x (K, N, C): member k's noise as a single run draws it (own generators)."""
        if sigma == 0:
            return x
        noise = self._fill(torch.empty_like(x), lambda t, g: t.normal_(0.0, sigma, generator=g))
        return noise.add_(x)

    def uniform(self, n: int, dim: int, device: torch.device) -> torch.Tensor:
        """(K, n, dim) uniform in [0, 1): each member's G noise z."""
        z = torch.empty(len(self.generators), n, dim, device=device)
        return self._fill(z, lambda t, g: t.uniform_(0.0, 1.0, generator=g))


def own_noise_generator(device: torch.device) -> torch.Generator:
    """A member's noise generator: on ``device``, started where that device's global torch RNG
    stands (after :func:`~improved_gan.training.build.build_state`, a single run's noise stream)."""
    generator = torch.Generator(device=device)
    generator.set_state(torch.get_rng_state() if device.type == "cpu" else torch.cuda.get_rng_state(device))
    return generator


def build_members(
    configs: Sequence[TrainConfig], device: torch.device, x_train: torch.Tensor, y_train: torch.Tensor
) -> tuple[list[TrainingState], list[SemiSupervisedBatches]]:
    """Each member's fresh training state, with its own noise generator on ``device`` started
    where its single run's noise would start, and its batch stream over ``x_train``. With
    ``member_noise: shared`` every member holds member 0's generator instead (after a resume, each
    member's checkpoint restores that one generator to the same saved state)."""
    members, streams = [], []
    for config in configs:
        state = build_state(config, device, x_train)
        state.noise_rng = own_noise_generator(device)
        members.append(state)
        streams.append(_batches(config, x_train, y_train))
    if configs and configs[0].member_noise == "shared":
        for state in members[1:]:
            state.noise_rng = members[0].noise_rng
    return members, streams


def _dense(x: torch.Tensor, v: torch.Tensor, unit_scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """(x Vᵀ) · unit_scale + b per member: x (K, N, in), v (K, out, in)."""
    return torch.bmm(x, v.transpose(1, 2)) * unit_scale.unsqueeze(1) + bias.unsqueeze(1)


@dataclass(frozen=True)
class StackedMnistModels:
    """The functional forward passes of the stacked :class:`~improved_gan.models.MnistDiscriminator`
    and :class:`~improved_gan.models.MnistGenerator` (the same operations in the same order)."""

    input_noise: float
    hidden_noise: tuple[float, ...]
    hidden_eps: tuple[float, ...]
    output_eps: float
    g_bn_eps: float
    noise_dim: int
    autocast: str | None  # a device type under bf16 autocast, else None

    @classmethod
    def of(cls, D: MnistDiscriminator, G: MnistGenerator, config: TrainConfig, device: torch.device):
        bns = [G.net[1], G.net[4]]
        return cls(
            D.input_noise.sigma,
            tuple(n.sigma for n in D.noise),
            tuple(layer.eps for layer in D.hidden),
            D.output.eps,
            bns[0].eps,
            G.noise_dim,
            device.type if config.amp == "bf16" else None,
        )

    def _cast(self, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        if self.autocast is None:
            return fn()
        with torch.autocast(self.autocast, dtype=torch.bfloat16):
            out = fn()
        return out.float()

    @staticmethod
    def _unit_scale(v: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
        norm = torch.linalg.vector_norm(v, dim=2)
        if eps:
            norm = (norm.square() + eps).sqrt()
        return scale / norm

    def _d_pass(self, d: Params, x: torch.Tensor, noise: MemberNoise | None, features: bool) -> torch.Tensor:
        h = x if noise is None else noise.add_normal(x, self.input_noise)
        last = len(self.hidden_noise) - 1
        for i, sigma in enumerate(self.hidden_noise):
            v, s, b = d[f"hidden.{i}.weight_v"], d[f"hidden.{i}.scale"], d[f"hidden.{i}.bias"]
            f = F.relu(_dense(h, v, self._unit_scale(v, s, self.hidden_eps[i]), b))
            if features and i == last:
                return f
            h = f if noise is None else noise.add_normal(f, sigma)
        v = d["output.weight_v"]
        return _dense(h, v, self._unit_scale(v, d["output.scale"], self.output_eps), d["output.bias"])

    def logits(self, d: Params, x: torch.Tensor, noise: MemberNoise | None) -> torch.Tensor:
        """(K, N, 10) logits; ``noise=None``: eval mode (no noise layers)."""
        return self._cast(lambda: self._d_pass(d, x, noise, features=False))

    def features(self, d: Params, x: torch.Tensor, noise: MemberNoise | None) -> torch.Tensor:
        """(K, N, 250): the last hidden layer's ReLU output before its noise (feature matching's f)."""
        return self._cast(lambda: self._d_pass(d, x, noise, features=True))

    def _bn(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(h, dim=1, correction=0, keepdim=True)
        return (h - mean) * torch.rsqrt(var + self.g_bn_eps) + bias.unsqueeze(1)

    def _g_pass(self, g: Params, z: torch.Tensor) -> torch.Tensor:
        h = F.softplus(self._bn(torch.bmm(z, g["net.0.weight"].transpose(1, 2)), g["net.1.bias"]))
        h = F.softplus(self._bn(torch.bmm(h, g["net.3.weight"].transpose(1, 2)), g["net.4.bias"]))
        v = g["net.6.weight_v"]
        norm = (v.square().sum(dim=2) + 1e-6).sqrt()
        return torch.sigmoid(_dense(h, v, g["net.6.scale"] / norm, g["net.6.bias"]))

    def generate(self, g: Params, z: torch.Tensor) -> torch.Tensor:
        """(K, n, 784) images in (0, 1) from z (K, n, noise_dim)."""
        return self._cast(lambda: self._g_pass(g, z))


def _lse(logits: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(logits, dim=2)


def member_losses(
    l_lab: torch.Tensor, y_lab: torch.Tensor, l_unl: torch.Tensor, l_gen: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per member (K,): L_supervised (mean cross-entropy) and L_unsupervised
    (:func:`improved_gan.losses.unsupervised_loss`) of logits (K, B, 10)."""
    k, b, c = l_lab.shape
    sup = F.cross_entropy(l_lab.reshape(k * b, c), y_lab.reshape(-1), reduction="none").view(k, b).mean(1)
    lse_unl, lse_gen = _lse(l_unl), _lse(l_gen)
    unsup = 0.5 * (-lse_unl.mean(1) + F.softplus(lse_unl).mean(1) + F.softplus(lse_gen).mean(1))
    return sup, unsup


class BatchedRuns:
    """K member :class:`~improved_gan.training.build.TrainingState` objects trained as one stacked model.

    The stacked tensors are the truth while training; :meth:`to_members` copies them into the
    members (for testing, sampling and checkpoints) and :meth:`from_members` stacks the members
    (after a resume).
    """

    def __init__(
        self, configs: Sequence[TrainConfig], members: Sequence[TrainingState], device: torch.device
    ):
        self.configs, self.members, self.device = list(configs), list(members), device
        D, G = self.members[0].D, self.members[0].G
        self.model = StackedMnistModels.of(D, G, self.configs[0], device)
        self.d_names = [n for n, p in D.named_parameters() if p.requires_grad]
        self.d_buffers = [n for n, _ in D.named_buffers()]
        self.g_names = [n for n, _ in G.named_parameters()]
        self.d: Params = {}
        self.g: Params = {}
        self.noise = MemberNoise([m.noise_rng for m in self.members])
        self.from_members()

    @property
    def size(self) -> int:
        return len(self.members)

    def from_members(self) -> None:
        """Stack the members' parameters, buffers, Adam moments and EMA shadows."""
        first = self.configs[0]

        def stack(tensors: list[torch.Tensor], trainable: bool) -> torch.Tensor:
            t = torch.stack([x.detach() for x in tensors]).to(self.device)
            return t.requires_grad_(True) if trainable else t

        d_mods = [dict(m.D.named_parameters()) | dict(m.D.named_buffers()) for m in self.members]
        g_mods = [dict(m.G.named_parameters()) for m in self.members]
        self.d = {
            n: stack([mod[n] for mod in d_mods], n in self.d_names) for n in self.d_names + self.d_buffers
        }
        self.g = {n: stack([mod[n] for mod in g_mods], True) for n in self.g_names}
        self.opt_d = ReferenceAdam([self.d[n] for n in self.d_names], None, first.betas, first.adam_eps)
        self.opt_g = ReferenceAdam([self.g[n] for n in self.g_names], None, first.betas, first.adam_eps)
        for opt, member_opts, names in (
            (self.opt_d, [m.opt_d for m in self.members], self.d_names),
            (self.opt_g, [m.opt_g for m in self.members], self.g_names),
        ):
            member_params = [o.param_groups[0]["params"] for o in member_opts]
            for i, p in enumerate(opt.param_groups[0]["params"]):
                states = [o.state.get(ps[i]) for o, ps in zip(member_opts, member_params)]
                if all(not s for s in states):
                    continue
                if any(not s for s in states) or len({float(s["step"]) for s in states}) > 1:
                    raise ImprovedGANError(
                        f"the batched runs' optimizers are at different steps ({names[i]}); resume them one at a time"
                    )
                opt.state[p] = {
                    "step": states[0]["step"].clone(),
                    "exp_avg": torch.stack([s["exp_avg"] for s in states]).to(self.device),
                    "exp_avg_sq": torch.stack([s["exp_avg_sq"] for s in states]).to(self.device),
                }
        self.ema_shadow: list[torch.Tensor] | None = None
        if self.members[0].ema is not None:
            updates = {m.ema.num_updates for m in self.members}
            if len(updates) > 1:
                raise ImprovedGANError(
                    "the batched runs' EMA are at different steps; resume them one at a time"
                )
            self.ema_updates = updates.pop()
            self.ema_shadow = [
                torch.stack([m.ema.shadow[i] for m in self.members]).to(self.device)
                for i in range(len(self.d_names))
            ]

    @torch.no_grad()
    def to_members(self) -> None:
        """Copy the stacked state into each member (parameters, Adam moments, EMA)."""
        for k, m in enumerate(self.members):
            d_mod = dict(m.D.named_parameters()) | dict(m.D.named_buffers())
            for n in self.d_names + self.d_buffers:
                d_mod[n].copy_(self.d[n][k])
            g_mod = dict(m.G.named_parameters())
            for n in self.g_names:
                g_mod[n].copy_(self.g[n][k])
            for opt, member_opt in ((self.opt_d, m.opt_d), (self.opt_g, m.opt_g)):
                for p, mp in zip(opt.param_groups[0]["params"], member_opt.param_groups[0]["params"]):
                    s = opt.state.get(p)
                    if s:
                        member_opt.state[mp] = {
                            "step": s["step"].clone(),
                            "exp_avg": s["exp_avg"][k].clone(),
                            "exp_avg_sq": s["exp_avg_sq"][k].clone(),
                        }
            if self.ema_shadow is not None:
                for shadow, stacked in zip(m.ema.shadow, self.ema_shadow):
                    shadow.copy_(stacked[k])
                m.ema.num_updates = self.ema_updates

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_d, self.opt_g):
            for group in opt.param_groups:
                group["lr"] = lr

    def iteration(
        self, x_lab: torch.Tensor, y_lab: torch.Tensor, x_unl: torch.Tensor, x_unl2: torch.Tensor
    ) -> torch.Tensor:
        """One D step and ``g_steps`` G steps of every member on its batches (K, B, ...); returns
        (K, 4): L_supervised, L_unsupervised, the last G loss and the labelled-batch train error."""
        config, model, noise = self.configs[0], self.model, self.noise
        n_gen = config.batch_size
        with torch.no_grad():
            x_gen = model.generate(self.g, noise.uniform(n_gen, model.noise_dim, self.device))
        logits = model.logits(self.d, torch.cat([x_lab, x_unl, x_gen], dim=1), noise)
        l_lab, l_unl, l_gen = logits.split([x_lab.shape[1], x_unl.shape[1], n_gen], dim=1)
        loss_sup, loss_unsup = member_losses(l_lab, y_lab, l_unl, l_gen)
        loss_d = (loss_sup + config.unlabeled_weight * loss_unsup).sum()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        if self.ema_shadow is not None:  # the reference averages the parameters from before this step
            with torch.no_grad():
                torch._foreach_lerp_(self.ema_shadow, [self.d[n] for n in self.d_names], 1 - config.ema.decay)
            self.ema_updates += 1
        self.opt_d.step()

        frozen = {n: t.detach() for n, t in self.d.items()}
        for _ in range(config.g_steps):
            with torch.no_grad():
                f_real = model.features(frozen, x_unl2, noise)
            fake = model.generate(self.g, noise.uniform(n_gen, model.noise_dim, self.device))
            f_fake = model.features(frozen, fake, noise)
            loss_g = (f_real.mean(1) - f_fake.mean(1)).square().mean(1)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.sum().backward()
            self.opt_g.step()
        with torch.no_grad():
            err = (l_lab.argmax(2) != y_lab).float().mean(1)
            return torch.stack([loss_sup, loss_unsup, loss_g, err], dim=1).detach()


def _prepare_members(
    configs: Sequence[TrainConfig], resume: bool
) -> tuple[list[RunDir], list[TrainConfig], bool]:
    """Each member's run directory checked (nothing written) and its resolved config; whether to resume.
    Members either all resume from checkpoints of one epoch or all start fresh."""
    runs = [RunDir(c.run_dir or c.default_run_dir()) for c in configs]
    resolved = [run.prepare(c, resume, write=False) for run, c in zip(runs, configs)]
    having = [run.has_checkpoint() for run in runs] if resume else [False] * len(runs)
    if any(having) and not all(having):
        started = [str(r.path) for r, h in zip(runs, having) if h]
        fresh = [str(r.path) for r, h in zip(runs, having) if not h]
        raise ImprovedGANError(
            f"cannot resume the batched runs together: {', '.join(started)} has a checkpoint but "
            f"{', '.join(fresh)} has none; resume them one at a time, or train the missing ones first"
        )
    return runs, resolved, all(having) and bool(having)


def train_batched(
    configs: Sequence[TrainConfig | dict], resume: bool = False, progress: bool = True
) -> list[Path]:
    """Train the runs ``configs`` (differing only in seed, labelled-subset seed and label count)
    as one batched model; returns their run directories. ``resume=True`` continues members that
    all stopped at the same epoch (members of one batched run always do)."""
    configs = [validate_config(c) if isinstance(c, dict) else c for c in configs]
    check_batchable(configs)
    runs, configs, resuming = _prepare_members(configs, resume)
    first = configs[0]
    if first.threads:
        torch.set_num_threads(first.threads)
    device = resolve_device(first.device)
    saved: list[tuple[dict, int]] = []
    if resuming:  # refuse a checkpoint that is not its run's before loading any data
        for run, config in zip(runs, configs):
            tensors, epoch = run.load_checkpoint()
            check_checkpoint(run.checkpoint_path, tensors, config, *shape_models(config))
            saved.append((tensors, epoch))
        epochs = {e for _, e in saved}
        if len(epochs) > 1:
            raise ImprovedGANError(
                f"the batched runs stopped at different epochs ({', '.join(str(e) for _, e in saved)}); "
                "resume them one at a time"
            )

    x_train, y_train = load_split(first, "train")
    x_test, y_test = load_split(first, "test")
    if first.data_on_device:  # batches are then cut and stacked on the device, as in a single run
        x_train, y_train = x_train.to(device), y_train.to(device)
    members, streams = build_members(configs, device, x_train, y_train)
    for state, (tensors, epoch) in zip(members, saved):  # saved is empty unless resuming
        state.load(tensors)
        state.epoch = epoch
    runs_by_member = list(zip(runs, configs, members))
    for run, config, state in runs_by_member:
        run.start(config, state.epoch)
    batched = BatchedRuns(configs, members, device)
    fixed = [sample_grid_noise(m, c, device) for m, c in zip(members, configs)]
    _run_batched_epochs(batched, streams, runs, (x_test, y_test), fixed, progress)
    return [run.path for run in runs]


def _stack_batches(batches: list, device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(
        torch.stack([getattr(b, name) for b in batches]).to(device)
        for name in ("x_lab", "y_lab", "x_unl", "x_unl2")
    )


def train_members_epoch(batched: BatchedRuns, streams: list, bar: bool = False) -> list[list[float]]:
    """One epoch of every member on its own batch stream; per member, the epoch's means of
    L_supervised, L_unsupervised, the G loss and the labelled train error. The sums stay on the
    device until the end, so a GPU is waited for once per epoch, not at every iteration."""
    members = batched.members
    sums = loss_sums(batched.size * 4, batched.device).view(batched.size, 4)
    n = len(streams[0])
    batches = tqdm(
        zip(*[s.epoch(m.data_rng) for s, m in zip(streams, members)]),
        total=n,
        desc=f"epoch {members[0].epoch + 1}/{batched.configs[0].epochs}",
        disable=not bar,
        leave=False,
    )
    for member_batches in batches:
        sums += batched.iteration(*_stack_batches(list(member_batches), batched.device)).to(sums.dtype)
    return (sums / n).tolist()


def _run_batched_epochs(
    batched: BatchedRuns,
    streams: list,
    runs: list[RunDir],
    test: tuple[torch.Tensor, torch.Tensor],
    fixed_noise: list[torch.Tensor],
    progress: bool,
) -> None:
    """The epochs from the members' epoch to ``epochs``: train all members, then test, log and
    save each as a single run does."""
    configs, members = batched.configs, batched.members
    first = configs[0]
    bars = progress and interactive()
    eval_batch = test_batch_size(members[0].D, first)
    histories = [run.read_metrics() for run in runs]  # the collapse monitor's yardsticks
    names = [f"s{c.seed}" + (f"/l{c.labels}" if c.labels != first.labels else "") for c in configs]
    for _ in tqdm(
        range(members[0].epoch, first.epochs), desc=f"training {batched.size} runs", disable=not bars
    ):
        start = time.perf_counter()
        lr = first.lr_at(members[0].epoch)
        batched.set_lr(lr)
        means = train_members_epoch(batched, streams, bars)
        train_seconds = time.perf_counter() - start
        batched.to_members()
        records = []
        for k, (config, state, run) in enumerate(zip(configs, members, runs)):
            trained = {
                "lr": lr,
                "loss_supervised": means[k][0],
                "loss_unsupervised": means[k][1],
                "loss_generator": means[k][2],
                "train_error": means[k][3],
            }
            check_finite_losses(trained, state.epoch + 1, run)
            state.epoch += 1
            images = len(streams[0]) * config.batch_size
            record = epoch_record(state, config, trained, train_seconds, images, test, eval_batch)
            record["batched_runs"] = batched.size
            save_epoch(state, config, run, record, None, fixed_noise[k])
            records.append(record)
            warning = episode_warning(record, histories[k])  # batched runs train by feature matching
            histories[k].append(record)
            if warning is not None:
                tqdm.write(f"seed {config.seed}, {warning}", file=sys.stderr)
        if progress:
            errors = ", ".join(f"{s} {r['test_errors']}" for s, r in zip(names, records))
            tqdm.write(
                f"epoch {records[0]['epoch']}/{first.epochs}: test errors {errors} (of {len(test[1])}), "
                f"{train_seconds:.1f} s for {batched.size} runs"
            )
