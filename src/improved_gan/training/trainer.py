"""The GAN training loop of the reference scripts (paper §3 and §5, openai/improved-gan `mnist_svhn_cifar10/nn.py`, `train_mnist_feature_matching.py`, `train_cifar_minibatch_discrimination.py`).

One iteration = one D step on three batches (labelled, unlabelled, freshly generated) with
L_supervised + w·L_unsupervised, then ``g_steps`` G steps (feature matching, or the minimax /
non-saturating loss). The paper's techniques are switched on in ``config.techniques``:
minibatch discrimination (D then sees real and generated data in separate forward passes),
historical averaging (a penalty on both players, its running means in the checkpoint), one-sided
label smoothing, and virtual batch norm in G (its reference noise is a buffer of G, so it is in
the checkpoint too). ``labels: 0`` trains an unsupervised GAN (D has one logit, D = σ(l)).

A run directory holds the resolved ``config.yaml``, ``metrics.jsonl`` (one line per epoch),
TensorBoard events under ``tb/``, sample grids under ``samples/`` and
``checkpoints/last.safetensors`` (atomic, no pickle). ``resume=True`` continues bit-for-bit on
the CPU.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from improved_gan.data import SemiSupervisedBatches, balanced_labelled_subset, load_images, to_float
from improved_gan.data.ssl_batches import data_permutation
from improved_gan.errors import ImprovedGANError
from improved_gan.losses import (
    generator_minimax_loss,
    generator_non_saturating_loss,
    semi_supervised_losses,
    unsupervised_loss,
)
from improved_gan.models import (
    ConvDiscriminator,
    ConvGenerator,
    ImagenetDiscriminator,
    ImagenetGenerator,
    MnistDiscriminator,
    MnistGenerator,
    data_dependent_init,
)
from improved_gan.techniques import (
    FeatureExtractor,
    HistoricalAveraging,
    MinibatchDiscrimination,
    binary_generator_loss,
    feature_matching_loss,
    has_cross_example_layers,
)
from improved_gan.training.checkpoint import (
    load_checkpoint,
    load_optimizer_tensors,
    optimizer_tensors,
    prefixed,
    save_checkpoint,
    unprefixed,
)
from improved_gan.training.config import TrainConfig, validate_config
from improved_gan.training.distributed import (
    SINGLE,
    DistContext,
    check_replicas,
    context_from_env,
    convert_sync_batchnorm,
    init_distributed,
    unsynced,
)
from improved_gan.training.ema import ParameterEMA
from improved_gan.training.images import save_grid, to_uint8_images
from improved_gan.training.optim import ReferenceAdam
from improved_gan.training.runtime import apply_runtime_options, is_joint

CHECKPOINT = "checkpoints/last.safetensors"
_DATA_SEED_OFFSET = 7919  # the batch-order generator's seed is seed + this (decoupled from init)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ImprovedGANError("device 'cuda' requested but no CUDA GPU is visible; use --set device=cpu")
    return torch.device(name)


def _minibatch_layer(config: TrainConfig, in_features: int) -> MinibatchDiscrimination | None:
    t = config.techniques
    if not t.minibatch_discrimination:
        return None
    return MinibatchDiscrimination(
        in_features, t.minibatch_kernels, t.minibatch_kernel_dim, t.minibatch_weight_std
    )


def build_models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """D and G for ``config.model`` and ``config.techniques`` (drawing their initial weights
    from the global torch RNG). G has ``sample_noise(n, generator, device)``."""
    norm = "vbn" if config.techniques.vbn else "bn"
    if config.model == "mnist-mlp":
        D = MnistDiscriminator(num_classes=config.num_logits, minibatch=_minibatch_layer(config, 250))
        return D, MnistGenerator(norm=norm, reference_size=config.batch_size)
    if config.model == "imagenet128":
        return _imagenet_models(config, norm)
    if config.model in ("conv28", "conv32"):
        c = config.conv
        channels, size, _ = config.image_shape
        D = ConvDiscriminator(
            in_channels=channels,
            image_size=size,
            widths=c.d_widths,
            num_classes=config.num_logits,
            first_padding=3 if size == 28 else 1,
            input_noise=c.input_noise,
            input_dropout=c.input_dropout,
            dropout=c.dropout,
            lrelu_slope=c.lrelu_slope,
            minibatch=_minibatch_layer(config, c.d_widths[1]),
        )
        G = ConvGenerator(
            widths=c.g_widths,
            out_channels=channels,
            image_size=size,
            norm=norm,
            reference_size=config.batch_size,
        )
        return D, G
    raise ImprovedGANError(f"unknown model {config.model!r}")


def _imagenet_models(config: TrainConfig, norm: str) -> tuple[nn.Module, nn.Module]:
    """The ImageNet 128×128 D (explicit generated logit, joint minibatch features) and G (VBN,
    per-layer noise maps), openai/improved-gan `imagenet/train_imagenet.py`."""
    c, t = config.imagenet, config.techniques
    D = ImagenetDiscriminator(
        num_classes=config.num_logits,
        widths=c.d_widths,
        hidden=c.hidden,
        minibatch_kernels=t.minibatch_kernels,
        minibatch_kernel_dim=t.minibatch_kernel_dim,
        input_noise=c.input_noise,
    )
    G = ImagenetGenerator(c.z_dim, c.g_widths, c.noise_channels, reference_size=config.batch_size, norm=norm)
    return D, G


def data_range(config: TrainConfig) -> tuple[float, float]:
    """The value range of real and generated images: [0, 1] for the MNIST MLP (sigmoid G), [−1, 1]
    for the conv models (tanh G)."""
    return (0.0, 1.0) if config.model == "mnist-mlp" else (-1.0, 1.0)


def load_split(config: TrainConfig, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset split as float32 (N, C·H·W) in :func:`data_range` (scaled as the reference
    scales that dataset) and int64 labels."""
    limit = config.max_train_examples if split == "train" else config.max_test_examples
    images, labels = load_images(
        config.dataset, split, config.data_dir, shape=config.image_shape, max_examples=limit
    )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if tuple(images.shape[1:]) != config.image_shape:
        raise ImprovedGANError(
            f"{config.dataset} images have shape {tuple(images.shape[1:])}, model {config.model} needs {config.image_shape}"
        )
    if labels.size and int(labels.max()) >= config.classes:
        raise ImprovedGANError(
            f"{config.dataset} has labels up to {int(labels.max())}, more than its {config.classes} classes; "
            "set num_classes"
        )
    x = torch.from_numpy(to_float(images, config.dataset, data_range(config)).reshape(len(images), -1))
    return x, torch.from_numpy(labels)


@dataclass
class TrainingState:
    """Everything that changes during training and is saved in a checkpoint."""

    D: nn.Module
    G: nn.Module
    opt_d: ReferenceAdam
    opt_g: ReferenceAdam
    ema: ParameterEMA | None
    data_rng: torch.Generator
    epoch: int = 0
    ha_d: HistoricalAveraging | None = None
    ha_g: HistoricalAveraging | None = None

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {**prefixed("D", self.D.state_dict()), **prefixed("G", self.G.state_dict())}
        out.update(prefixed("opt_d", optimizer_tensors(self.opt_d)))
        out.update(prefixed("opt_g", optimizer_tensors(self.opt_g)))
        if self.ema is not None:
            out.update(prefixed("ema", self.ema.state_dict()))
        if self.ha_d is not None and self.ha_g is not None:
            out.update(prefixed("ha_d", self.ha_d.state_dict()))
            out.update(prefixed("ha_g", self.ha_g.state_dict()))
        out["rng.torch"] = torch.get_rng_state()
        out["rng.data"] = self.data_rng.get_state()
        return out

    def replica_tensors(self) -> dict[str, torch.Tensor]:
        """What must be identical on every process: all but the per-process random streams."""
        return {k: v for k, v in self.tensors().items() if not k.startswith("rng.")}

    def load(self, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
        self.D.load_state_dict(unprefixed("D", tensors))
        self.G.load_state_dict(unprefixed("G", tensors))
        load_optimizer_tensors(self.opt_d, unprefixed("opt_d", tensors))
        load_optimizer_tensors(self.opt_g, unprefixed("opt_g", tensors))
        if self.ema is not None:
            self.ema.load_state_dict(unprefixed("ema", tensors))
        if self.ha_d is not None and self.ha_g is not None:
            self.ha_d.load_state_dict(unprefixed("ha_d", tensors))
            self.ha_g.load_state_dict(unprefixed("ha_g", tensors))
        torch.set_rng_state(tensors["rng.torch"])
        self.data_rng.set_state(tensors["rng.data"])
        self.epoch = int(metadata["epoch"])


def build_state(config: TrainConfig, device: torch.device, x_train: torch.Tensor) -> TrainingState:
    """Fresh models (seeded), their data-dependent init, optimizers, EMA and historical averages.

    D is initialised on ``init_examples`` training images (and its minibatch layer with them);
    a G with data-initialised layers (the conv G's last deconv) on one batch of noise."""
    torch.manual_seed(config.seed)
    D, G = build_models(config)
    D, G = D.to(device), G.to(device)
    init_idx = torch.from_numpy(data_permutation(len(x_train), config.data_seed)[: config.init_examples])
    D.train()
    with torch.no_grad(), data_dependent_init(D):
        D(x_train[init_idx].to(device))
    if any(hasattr(m, "initializing") for m in G.modules()):
        G.train()
        with torch.no_grad(), data_dependent_init(G):
            G(G.sample_noise(config.batch_size, device=device))
    d_params = [p for p in D.parameters() if p.requires_grad]
    opt_d = ReferenceAdam(d_params, config.lr, config.betas, config.adam_eps)
    opt_g = ReferenceAdam(G.parameters(), config.lr, config.betas, config.adam_eps)
    ema = ParameterEMA(D, config.ema.decay, config.ema.bias_correction) if config.ema.enabled else None
    data_rng = torch.Generator().manual_seed(config.seed + _DATA_SEED_OFFSET)
    ha_d = ha_g = None
    if config.techniques.historical_averaging > 0:
        ha_d = HistoricalAveraging(d_params, config.techniques.historical_averaging)
        ha_g = HistoricalAveraging(list(G.parameters()), config.techniques.historical_averaging)
        ha_d.update()  # the initial parameters are the first entry of each history
        ha_g.update()
    apply_runtime_options(D, config, device)
    apply_runtime_options(G, config, device)
    return TrainingState(D, G, opt_d, opt_g, ema, data_rng, ha_d=ha_d, ha_g=ha_g)


def test_batch_size(D: nn.Module, config: TrainConfig | None = None) -> int:
    """Examples per test forward pass: 1000, or the training batch size when D has cross-example
    layers (minibatch features depend on the batch, so test batches match training's, as the
    reference does)."""
    if has_cross_example_layers(D):
        return config.batch_size if config is not None else 100
    return 1000


@torch.no_grad()
def predict_logits(D: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """D's logits in eval mode (no noise), (N, K). With minibatch discrimination the logits of
    an example depend on the other examples of its batch of ``batch_size``."""
    was_training = D.training
    D.eval()
    device = next(D.parameters()).device
    out = torch.cat([D(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])
    D.train(was_training)
    return out


def test_logits(state: TrainingState, x_test: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Test logits with the EMA weights when enabled (the reference's test function)."""
    if state.ema is None:
        return predict_logits(state.D, x_test, batch_size)
    with state.ema.swapped_in():
        return predict_logits(state.D, x_test, batch_size)


def _set_d_grad(D: nn.Module, flag: bool) -> None:
    for p in D.parameters():
        p.requires_grad_(flag)


def _feature_function(D: nn.Module, config: TrainConfig):
    """f(x) for feature matching: D's own ``features`` or the named layer's output."""
    if config.feature_matching_layer is None:
        return D.features
    return FeatureExtractor(D, config.feature_matching_layer).features


def _discriminator_logits(
    D: nn.Module, x_lab: torch.Tensor, x_unl: torch.Tensor, x_gen: torch.Tensor, separate: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits_lab, logits_unl, logits_gen). Without cross-example layers one forward pass over
    the concatenation equals three passes; with them (minibatch discrimination) the batches go
    through D separately, as the paper requires. An empty labelled batch is not run."""
    x_gen = x_gen.reshape(len(x_gen), *x_unl.shape[1:])  # a conv G's images, flattened like the data
    if is_joint(D):  # the ImageNet D: one joint pass, real rows first
        logits = D(torch.cat([x_lab, x_unl, x_gen]), num_real=len(x_lab) + len(x_unl))
        return logits.split([len(x_lab), len(x_unl), len(x_gen)])
    if not separate:
        logits = D(torch.cat([x_lab, x_unl, x_gen]))
        return logits.split([len(x_lab), len(x_unl), len(x_gen)])
    l_lab = D(x_lab) if len(x_lab) else x_lab.new_zeros(0, 0)
    return l_lab, D(x_unl), D(x_gen)


def train_epoch(
    state: TrainingState,
    batches: SemiSupervisedBatches,
    config: TrainConfig,
    device: torch.device,
    progress: bool,
    ctx: DistContext = SINGLE,
) -> dict[str, float]:
    """One epoch of D and G steps; returns mean losses and (with labels) the labelled-batch
    train error. On several processes (``ctx``) each takes its slice of every global batch and
    the gradients are averaged (:mod:`improved_gan.training.distributed`)."""
    D, G = state.D, state.G
    ctx.seed_epoch(config.seed, state.epoch)
    n_gen = ctx.check_batch_size(config.batch_size)
    D.train()
    G.train()
    lr = config.lr_at(state.epoch)
    for opt in (state.opt_d, state.opt_g):
        for group in opt.param_groups:
            group["lr"] = lr
    d_params = [p for p in D.parameters() if p.requires_grad]
    separate = has_cross_example_layers(D)
    features = _feature_function(D, config)
    alpha = config.techniques.label_smoothing
    sums = torch.zeros(4, dtype=torch.float64)
    bar = tqdm(
        batches.epoch(state.data_rng),
        total=len(batches),
        desc=f"epoch {state.epoch + 1}/{config.epochs}",
        disable=not (progress and ctx.is_main),
        leave=False,
    )
    n = 0
    for batch in bar:
        x_lab, y_lab = ctx.shard(batch.x_lab).to(device), ctx.shard(batch.y_lab).to(device)
        x_unl, x_unl2 = ctx.shard(batch.x_unl).to(device), ctx.shard(batch.x_unl2).to(device)
        # D step: labelled, unlabelled and generated batches.
        with torch.no_grad():
            x_gen = G(G.sample_noise(n_gen, device=device))
        l_lab, l_unl, l_gen = _discriminator_logits(D, x_lab, x_unl, x_gen, separate)
        if config.supervised:
            loss_sup, loss_unsup = semi_supervised_losses(l_lab, y_lab, l_unl, l_gen, alpha)
        else:
            loss_sup, loss_unsup = torch.zeros((), device=device), unsupervised_loss(l_unl, l_gen, alpha)
        loss_d = loss_sup + config.unlabeled_weight * loss_unsup
        if state.ha_d is not None:
            loss_d = loss_d + state.ha_d.penalty()
        state.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        ctx.average_gradients(d_params)
        if state.ema is not None:
            state.ema.update()  # the reference averages the parameters from before this step
        state.opt_d.step()
        if state.ha_d is not None:
            state.ha_d.update()
        # G steps; D's weights get no gradient.
        _set_d_grad(D, False)
        for _ in range(config.g_steps):
            if config.generator_loss == "feature_matching":
                with torch.no_grad():
                    f_real = features(x_unl2)
                f_fake = features(G(G.sample_noise(n_gen, device=device)))
                if ctx.enabled:  # a function of batch means: match the global batch's means
                    f_real, f_fake = ctx.global_mean(f_real), ctx.global_mean(f_fake)
                loss_g = feature_matching_loss(f_real, f_fake, config.feature_matching_norm)
            else:
                fake = G(G.sample_noise(n_gen, device=device))
                if is_joint(D):  # the joint D judges fakes beside a real batch, as in its D step
                    fake = fake.reshape(len(fake), *x_unl.shape[1:])
                    logits_fake = D(torch.cat([x_unl, fake]), num_real=len(x_unl))[len(x_unl) :]
                else:
                    logits_fake = D(fake)
                if config.generator_loss == "minimax":
                    loss_g = generator_minimax_loss(logits_fake)
                elif config.generator_target != 1.0:  # the ImageNet code's target α/2 (§11)
                    loss_g = binary_generator_loss(
                        torch.logsumexp(logits_fake, dim=1), config.generator_target
                    )
                else:
                    loss_g = generator_non_saturating_loss(logits_fake)
            total_g = loss_g if state.ha_g is None else loss_g + state.ha_g.penalty()
            state.opt_g.zero_grad(set_to_none=True)
            total_g.backward()
            ctx.average_gradients(G.parameters())
            state.opt_g.step()
            if state.ha_g is not None:
                state.ha_g.update()
        for p in d_params:
            p.requires_grad_(True)
        with torch.no_grad():
            err = (l_lab.argmax(1) != y_lab).float().mean() if config.supervised else torch.zeros(())
            sums += torch.stack([loss_sup, loss_unsup, loss_g, err.to(loss_g.device)]).double().cpu()
        n += 1
        if progress and n % 50 == 0:
            s = sums / n
            bar.set_postfix(sup=f"{s[0]:.3f}", unsup=f"{s[1]:.3f}", gen=f"{s[2]:.3f}", err=f"{s[3]:.3f}")
    means = (ctx.sum_(sums) / (max(n, 1) * ctx.world_size)).tolist()
    record = {
        "lr": lr,
        "loss_supervised": means[0],
        "loss_unsupervised": means[1],
        "loss_generator": means[2],
        "train_error": means[3],
    }
    if not config.supervised:
        del record["loss_supervised"], record["train_error"]
    return record


def _truncate_metrics(path: Path, last_epoch: int) -> None:
    """Keep only the metrics lines of epochs ≤ ``last_epoch`` (those the checkpoint covers)."""
    if not path.exists():
        return
    kept = [
        ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["epoch"] <= last_epoch
    ]
    path.write_text("".join(ln + "\n" for ln in kept))


def _prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool, write: bool = True) -> TrainConfig:
    ckpt = run_dir / CHECKPOINT
    saved = run_dir / "config.yaml"
    if resume and ckpt.exists():
        import yaml

        old = validate_config(yaml.safe_load(saved.read_text()), str(saved))
        # Settings that do not change what is computed may differ on resume.
        free = (
            "epochs",
            "run_dir",
            "runs_root",
            "data_dir",
            "device",
            "threads",
            "tensorboard",
            "score_every",
            "score_samples",
            # speed options: the same computation up to floating point (e.g. resume a CPU run on a GPU)
            "compile",
            "compile_backend",
            "amp",
            "channels_last",
            "data_on_device",
        )
        differing = [k for k, v in config.model_dump().items() if k not in free and old.model_dump()[k] != v]
        if differing:
            raise ImprovedGANError(
                f"cannot resume {run_dir}: the config differs in {', '.join(differing)}; resume with the "
                f"same settings (only {', '.join(free[:1] + free[3:])} may change) or use another --run-dir"
            )
    elif ckpt.exists():
        raise ImprovedGANError(
            f"{run_dir} already holds a run; pass --resume to continue it, or choose another --run-dir"
        )
    config = config.model_copy(update={"run_dir": str(run_dir)})
    if not write:  # another process (rank 0) writes the run directory
        return config
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = saved.with_suffix(".yaml.tmp")
    tmp.write_text(config.to_yaml())
    os.replace(tmp, saved)
    return config


def train(config: TrainConfig | dict, resume: bool = False, progress: bool = True) -> Path:
    """Train a semi-supervised GAN as ``config`` says; returns the run directory.

    With ``resume=True`` and a checkpoint in the run directory, training continues from the last
    completed epoch and gives the same result as an uninterrupted run (on the CPU).

    Under ``torchrun`` with several processes it trains data-parallel (gloo on the CPU, NCCL on
    GPUs; see :mod:`improved_gan.training.distributed`): rank 0 alone writes the run directory,
    and a run may be resumed with any number of processes.
    """
    if isinstance(config, dict):
        config = validate_config(config)
    run_dir = Path(config.run_dir) if config.run_dir else config.default_run_dir()
    ctx = context_from_env()
    ctx.check_batch_size(config.batch_size)
    config = _prepare_run_dir(config, run_dir, resume, write=ctx.is_main)
    if config.threads:
        torch.set_num_threads(config.threads)
    ctx, device, _ = init_distributed(resolve_device(config.device))
    ctx.require_same(
        resume and (run_dir / CHECKPOINT).exists(),
        "whether there is a checkpoint to resume (put --run-dir on a filesystem that all nodes share)",
    )
    progress = progress and ctx.is_main

    x_train, y_train = load_split(config, "train")
    x_test, y_test = load_split(config, "test")
    if config.supervised:
        lab_idx = torch.from_numpy(
            balanced_labelled_subset(y_train.numpy(), config.labels_per_class, config.data_seed)
        )
    else:
        lab_idx = torch.zeros(0, dtype=torch.int64)
    if config.data_on_device:
        x_train, y_train = x_train.to(device), y_train.to(device)
    batches = SemiSupervisedBatches(
        x_train[lab_idx], y_train[lab_idx], x_train, config.batch_size, tile=config.label_tiling
    )
    state = build_state(config, device, x_train)
    if ctx.enabled:
        ctx.broadcast_module(state.D)
        ctx.broadcast_module(state.G)
        if config.sync_batchnorm:
            convert_sync_batchnorm(state.G)
    eval_batch = test_batch_size(state.D, config)
    metrics_path = run_dir / "metrics.jsonl"
    if resume and (run_dir / CHECKPOINT).exists():
        state.load(*load_checkpoint(run_dir / CHECKPOINT))
        if ctx.is_main:
            _truncate_metrics(metrics_path, state.epoch)
    elif metrics_path.exists() and ctx.is_main:
        metrics_path.unlink()

    writer = None
    if config.tensorboard and ctx.is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"), purge_step=state.epoch + 1)
    fixed_noise = state.G.sample_noise(100, generator=torch.Generator().manual_seed(config.seed)).to(device)

    epochs = tqdm(range(state.epoch, config.epochs), desc="training", disable=not progress, unit="epoch")
    for _ in epochs:
        start = time.perf_counter()
        record = train_epoch(state, batches, config, device, progress, ctx)
        train_seconds = time.perf_counter() - start
        state.epoch += 1
        tested = {}
        if config.supervised and ctx.is_main:  # rank 0 tests on the whole test set, as one process
            errors = int((test_logits(state, x_test, eval_batch).argmax(1) != y_test).sum())
            tested = {"test_errors": errors, "test_error": errors / len(y_test)}
            if state.ema is not None:  # also report the raw weights, which lead the average early on
                raw = int((predict_logits(state.D, x_test, eval_batch).argmax(1) != y_test).sum())
                tested.update({"test_errors_raw": raw, "test_error_raw": raw / len(y_test)})
        record = {
            "epoch": state.epoch,
            **record,
            **tested,
            "seconds": train_seconds,
            "images_per_second": len(batches) * config.batch_size / train_seconds,
            "eval_seconds": time.perf_counter() - start - train_seconds,
            **({"processes": ctx.world_size} if ctx.enabled else {}),
        }
        # issue 4: dataset score and FID of G's samples (cached classifier) every score_every epochs
        if config.score_every and state.epoch % config.score_every == 0:
            from improved_gan.metrics.training_hook import generator_scores

            if ctx.enabled:  # sampling and features sharded, logits and features gathered
                from improved_gan.metrics.distributed import sharded_generator_scores as generator_scores
            record.update(
                generator_scores(
                    state.G,
                    config.dataset,
                    config.score_samples,
                    config.seed,
                    config.data_dir,
                    data_range(config),
                )
            )
        if ctx.enabled:
            check_replicas(state.replica_tensors(), ctx)
            if not ctx.is_main:
                continue
        with metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if writer is not None:
            for key, value in record.items():
                if key != "epoch":
                    writer.add_scalar(key, value, state.epoch)
            writer.flush()
        if config.sample_grid:
            with torch.no_grad(), unsynced(state.G):
                samples = to_uint8_images(state.G(fixed_noise), value_range=data_range(config))
            save_grid(samples, run_dir / "samples" / f"epoch_{state.epoch:04d}.png", rows=10)
        save_checkpoint(run_dir / CHECKPOINT, state.tensors(), {"epoch": str(state.epoch)})
        if not config.supervised:
            epochs.set_postfix(
                unsup=f"{record['loss_unsupervised']:.3f}", gen=f"{record['loss_generator']:.3f}"
            )
            if progress:
                tqdm.write(
                    f"epoch {state.epoch}: losses unsup {record['loss_unsupervised']:.4f} "
                    f"gen {record['loss_generator']:.4f}, {train_seconds:.1f} s"
                )
            continue
        errors = tested["test_errors"]
        epochs.set_postfix(test_errors=errors, train_err=f"{record['train_error']:.3f}")
        if not progress:
            continue
        tqdm.write(
            f"epoch {state.epoch}: test errors {errors}/{len(y_test)}, train error {record['train_error']:.4f}, "
            f"losses sup {record['loss_supervised']:.4f} unsup {record['loss_unsupervised']:.4f} "
            f"gen {record['loss_generator']:.4f}, {train_seconds:.1f} s"
        )
    if writer is not None:
        writer.close()
    ctx.barrier()  # every process returns once rank 0 has written the last epoch
    return run_dir
