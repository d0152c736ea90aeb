"""The training loop of the reference scripts (paper §3 and §5; openai/improved-gan
``mnist_svhn_cifar10/train_mnist_feature_matching.py``, ``train_cifar_minibatch_discrimination.py``).

One iteration = one D step on three batches (labelled, unlabelled, freshly generated) with
L_supervised + w·L_unsupervised, then ``g_steps`` G steps (:mod:`~improved_gan.training.steps`).
The paper's techniques are switched on in ``config.techniques``; ``labels: 0`` trains an
unsupervised GAN (D has one logit, D = σ(l)). Each epoch appends a line to the run directory's
``metrics.jsonl`` and replaces its checkpoint (:mod:`~improved_gan.training.run_dir`);
``resume=True`` continues bit for bit on the CPU.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from improved_gan.data import SemiSupervisedBatches, balanced_labelled_subset
from improved_gan.errors import ImprovedGANError
from improved_gan.metrics import generator_scores
from improved_gan.models.sync_batch_norm import convert_sync_batchnorm, unsynced
from improved_gan.techniques import has_cross_example_layers
from improved_gan.training.build import (
    TrainingState,
    build_state,
    check_checkpoint,
    data_range,
    load_split,
    predict_logits,
    resolve_device,
    shape_models,
    test_batch_size,
    test_logits,
)
from improved_gan.training.config import TrainConfig, validate_config
from improved_gan.training.monitor import collapse_signals, episode_warning
from improved_gan.training.run_dir import RunDir
from improved_gan.training.steps import discriminator_step, generator_loss, generator_step
from improved_gan.utils.distributed import (
    SINGLE,
    DistContext,
    check_replicas,
    context_from_env,
    init_distributed,
)
from improved_gan.utils.images import tile_images, to_uint8_images


def interactive() -> bool:
    """Whether progress bars can redraw in place: stderr is a terminal. Elsewhere (a log file, CI,
    ``nohup``) a run prints one plain line per epoch instead, not tqdm's carriage returns."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def loss_sums(n: int, device: torch.device) -> torch.Tensor:
    """Zeros on ``device`` that add up an epoch's per-iteration losses there, read once per epoch:
    a per-iteration read would make the CPU wait for the GPU at every step (float64; float32 on
    MPS, which has no float64)."""
    return torch.zeros(n, dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)


def train_epoch(
    state: TrainingState,
    batches: SemiSupervisedBatches,
    config: TrainConfig,
    device: torch.device,
    progress: bool,
    ctx: DistContext = SINGLE,
) -> dict[str, float]:
    """One epoch of D and G steps; returns the lr, mean losses and (with labels) the
    labelled-batch train error. On several processes (``ctx``) each takes its slice of every
    global batch and the gradients are averaged (:mod:`improved_gan.utils.distributed`)."""
    ctx.seed_epoch(config.seed, state.epoch)
    n_gen = ctx.check_batch_size(config.batch_size)
    state.D.train()
    state.G.train()
    lr = config.lr_at(state.epoch)
    state.set_lr(lr)
    separate = has_cross_example_layers(state.D)
    g_loss = generator_loss(config, state, n_gen, ctx)
    sums = loss_sums(4, device)
    bar = tqdm(
        batches.epoch(state.data_rng),
        total=len(batches),
        desc=f"epoch {state.epoch + 1}/{config.epochs}",
        disable=not (progress and ctx.is_main and interactive()),
        leave=False,
    )
    n = 0
    for batch in bar:
        x_lab, y_lab = ctx.shard(batch.x_lab).to(device), ctx.shard(batch.y_lab).to(device)
        x_unl, x_unl2 = ctx.shard(batch.x_unl).to(device), ctx.shard(batch.x_unl2).to(device)
        loss_sup, loss_unsup, l_lab = discriminator_step(
            state, config, x_lab, y_lab, x_unl, n_gen, separate, ctx
        )
        loss_g = generator_step(state, config, g_loss, x_unl, x_unl2, ctx)
        with torch.no_grad():
            err = (l_lab.argmax(1) != y_lab).float().mean() if config.supervised else torch.zeros(())
            sums += torch.stack([loss_sup, loss_unsup, loss_g, err.to(loss_g.device)]).to(sums.dtype)
        n += 1
        if not bar.disable and n % 50 == 0:
            s = (sums / n).tolist()
            bar.set_postfix(sup=f"{s[0]:.3f}", unsup=f"{s[1]:.3f}", gen=f"{s[2]:.3f}", err=f"{s[3]:.3f}")
    means = (ctx.sum_(sums.cpu()) / (max(n, 1) * ctx.world_size)).tolist()
    record = {
        "lr": lr,
        "loss_supervised": means[0],
        "loss_unsupervised": means[1],
        "loss_generator": means[2],
    }
    if config.supervised:
        record["train_error"] = means[3]
    else:
        del record["loss_supervised"]
    return record


def _batches(config: TrainConfig, x_train: torch.Tensor, y_train: torch.Tensor) -> SemiSupervisedBatches:
    """The reference's batch streams over the class-balanced labelled subset and all of train."""
    lab_idx = torch.zeros(0, dtype=torch.int64)
    if config.supervised:
        lab_idx = torch.from_numpy(
            balanced_labelled_subset(y_train.cpu().numpy(), config.labels_per_class, config.data_seed)
        )
    return SemiSupervisedBatches(
        x_train[lab_idx], y_train[lab_idx], x_train, config.batch_size, tile=config.label_tiling
    )


def _test_errors(state: TrainingState, x_test: torch.Tensor, y_test: torch.Tensor, batch: int) -> dict:
    """Test errors with the test-time weights, and with the raw weights when those differ."""
    errors = int((test_logits(state, x_test, batch).argmax(1) != y_test).sum())
    out = {"test_errors": errors, "test_error": errors / len(y_test)}
    if state.ema is not None:  # also report the raw weights, which lead the average early on
        raw = int((predict_logits(state.D, x_test, batch).argmax(1) != y_test).sum())
        out.update({"test_errors_raw": raw, "test_error_raw": raw / len(y_test)})
    return out


def epoch_summary(record: dict, n_test: int, epochs: int) -> str:
    """The console line of one epoch (the whole log when stderr is not a terminal)."""
    losses = f"unsup {record['loss_unsupervised']:.4f} gen {record['loss_generator']:.4f}"
    if "test_errors" not in record:
        return f"epoch {record['epoch']}/{epochs}: losses {losses}, {record['seconds']:.1f} s"
    return (
        f"epoch {record['epoch']}/{epochs}: test errors {record['test_errors']}/{n_test}, train error "
        f"{record['train_error']:.4f}, losses sup {record['loss_supervised']:.4f} {losses}, {record['seconds']:.1f} s"
    )


def train(config: TrainConfig | dict, resume: bool = False, progress: bool = True) -> Path:
    """Train a semi-supervised GAN as ``config`` says; returns the run directory.

    With ``resume=True`` and a checkpoint in the run directory, training continues from the last
    completed epoch and gives the same result as an uninterrupted run (on the CPU).

    Under ``torchrun`` with several processes it trains data-parallel (gloo on the CPU, NCCL on
    GPUs; see :mod:`improved_gan.utils.distributed`): rank 0 alone writes the run directory,
    and a run may be resumed with any number of processes.
    """
    if isinstance(config, dict):
        config = validate_config(config)
    run = RunDir(config.run_dir or config.default_run_dir())
    ctx = context_from_env()
    ctx.check_batch_size(config.batch_size)
    config = run.prepare(config, resume, write=False)  # checks only: nothing is written yet
    if config.threads:
        torch.set_num_threads(config.threads)
    ctx, device, _ = init_distributed(resolve_device(config.device))
    resuming = resume and run.has_checkpoint()
    ctx.require_same(
        resuming,
        "whether there is a checkpoint to resume (put --run-dir on a filesystem that all nodes share)",
    )
    progress = progress and ctx.is_main
    if resuming:  # refuse a checkpoint that is not this run's before loading any data
        tensors, epoch = run.load_checkpoint()
        check_checkpoint(run.checkpoint_path, tensors, config, *shape_models(config))

    x_train, y_train = load_split(config, "train")
    x_test, y_test = load_split(config, "test")
    if config.data_on_device:
        x_train, y_train = x_train.to(device), y_train.to(device)
    batches = _batches(config, x_train, y_train)
    state = build_state(config, device, x_train)
    if ctx.enabled:
        ctx.broadcast_module(state.D)
        ctx.broadcast_module(state.G)
        if config.sync_batchnorm:
            convert_sync_batchnorm(state.G)
    if resuming:
        state.load(tensors)
        state.epoch = epoch
    if ctx.is_main:
        run.start(config, state.epoch)

    writer = None
    if config.tensorboard and ctx.is_main:
        from torch.utils.tensorboard import SummaryWriter  # loads TensorFlow's protobufs: only when asked

        writer = SummaryWriter(str(run.tensorboard_dir), purge_step=state.epoch + 1)
    fixed_noise = sample_grid_noise(state, config, device)

    try:
        _run_epochs(state, batches, config, device, progress, ctx, run, writer, fixed_noise, (x_test, y_test))
    finally:
        if writer is not None:
            writer.close()
    ctx.barrier()  # every process returns once rank 0 has written the last epoch
    return run.path


def sample_grid_noise(state: TrainingState, config: TrainConfig, device: torch.device) -> torch.Tensor:
    """The 100 noise vectors of a run's sample grids, the same every epoch: from their own
    generator seeded with the run's seed, so they draw nothing from training's streams."""
    return state.G.sample_noise(100, generator=torch.Generator().manual_seed(config.seed)).to(device)


def check_finite_losses(record: dict, epoch: int, run: RunDir) -> None:
    """Stop a run whose losses became NaN or infinite, before its metrics or checkpoint get them."""
    bad = [k for k, v in record.items() if k.startswith("loss") and not math.isfinite(v)]
    if bad:
        kept = f"the checkpoint and metrics of epoch {epoch - 1}" if epoch > 1 else "no epoch (none finished)"
        lr = record["lr"]
        raise ImprovedGANError(
            f"training diverged in epoch {epoch}: {', '.join(bad)} became NaN or infinite; {run.path} keeps "
            f"{kept}; train again with a lower lr (now {lr:g}, e.g. --set lr={lr / 10:g}) and another --run-dir"
        )


def epoch_record(
    state: TrainingState,
    config: TrainConfig,
    trained: dict,
    train_seconds: float,
    images: int,
    test: tuple[torch.Tensor, torch.Tensor],
    eval_batch: int,
    ctx: DistContext = SINGLE,
) -> dict:
    """The metrics line of the epoch ``state.epoch`` just completed: its training means
    (``trained``), the collapse signals, the test errors (rank 0), timings and, every
    ``score_every`` epochs, the generator scores."""
    eval_start = time.perf_counter()
    # rank 0 tests on the whole test set, as one process
    tested = _test_errors(state, *test, eval_batch) if config.supervised and ctx.is_main else {}
    record = {
        "epoch": state.epoch,
        **trained,
        **collapse_signals(state, config, config.batch_size),
        **tested,
        "seconds": train_seconds,
        "images_per_second": images / train_seconds,
        "eval_seconds": time.perf_counter() - eval_start,
        **({"processes": ctx.world_size} if ctx.enabled else {}),
    }
    if config.score_every and state.epoch % config.score_every == 0:  # cached dataset classifier
        scores = generator_scores(
            state.G,
            config.dataset,
            config.score_samples,
            config.seed,
            config.data_dir,
            data_range(config),
        )
        record.update(scores)
    return record


def save_epoch(
    state: TrainingState,
    config: TrainConfig,
    run: RunDir,
    record: dict,
    writer: Any,
    fixed_noise: torch.Tensor,
) -> None:
    """Append ``record`` to the run's metrics (and TensorBoard), draw its sample grid and
    replace its checkpoint."""
    run.append_metrics(record)
    if writer is not None:
        for key, value in record.items():
            if key != "epoch":
                writer.add_scalar(key, value, state.epoch)
        writer.flush()
    if config.sample_grid:
        with torch.no_grad(), unsynced(state.G):
            samples = to_uint8_images(state.G(fixed_noise), value_range=data_range(config))
        run.save_sample_grid(samples, state.epoch)
        if writer is not None:
            grid = tile_images(samples, rows=10, scale=1)
            writer.add_image("samples", grid, state.epoch, dataformats="HWC" if grid.ndim == 3 else "HW")
            writer.flush()
    run.save_checkpoint(state.tensors(), state.epoch)


def _run_epochs(
    state: TrainingState,
    batches: SemiSupervisedBatches,
    config: TrainConfig,
    device: torch.device,
    progress: bool,
    ctx: DistContext,
    run: RunDir,
    writer: Any,
    fixed_noise: torch.Tensor,
    test: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """The epochs from ``state.epoch`` to ``config.epochs``: train, test, log, save."""
    eval_batch = test_batch_size(state.D, config)
    bars = progress and interactive()
    epochs = tqdm(range(state.epoch, config.epochs), desc="training", disable=not bars, unit="epoch")
    history = run.read_metrics() if ctx.is_main else []  # the collapse monitor's yardstick
    fm = config.generator_loss == "feature_matching"
    for _ in epochs:
        start = time.perf_counter()
        trained = train_epoch(state, batches, config, device, progress, ctx)
        train_seconds = time.perf_counter() - start
        check_finite_losses(trained, state.epoch + 1, run)
        state.epoch += 1
        images = len(batches) * config.batch_size
        record = epoch_record(state, config, trained, train_seconds, images, test, eval_batch, ctx)
        if ctx.enabled:
            check_replicas(state.replica_tensors(), ctx)
            if not ctx.is_main:
                continue
        save_epoch(state, config, run, record, writer, fixed_noise)
        warning = episode_warning(record, history, fm)
        history.append(record)
        if warning is not None:
            tqdm.write(warning, file=sys.stderr)
        if bars and "test_errors" in record:
            epochs.set_postfix(test_errors=record["test_errors"], train_err=f"{record['train_error']:.3f}")
        elif bars:
            epochs.set_postfix(
                unsup=f"{record['loss_unsupervised']:.3f}", gen=f"{record['loss_generator']:.3f}"
            )
        if progress:
            tqdm.write(epoch_summary(record, len(test[1]), config.epochs))
