"""What a finished (or running) run gives back: its models, its test errors, and its generator's
samples. This is the one place that turns a run directory into samples (:func:`sample_from_run`,
:func:`run_source`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics import ImageSource, array_source, sample_generator
from improved_gan.training.build import (
    build_models,
    check_checkpoint,
    data_range,
    load_split,
    predict_logits,
    test_batch_size,
)
from improved_gan.training.config import TrainConfig
from improved_gan.training.ema import ParameterEMA
from improved_gan.training.run_dir import RunDir
from improved_gan.utils.checkpoint import unprefixed


def load_run_models(
    run_dir: str | Path, use_ema: bool = True
) -> tuple[TrainConfig, nn.Module, nn.Module, int]:
    """(config, D, G, epoch) from a run's last checkpoint; D carries the EMA weights if asked and
    available (as the reference tests), else the raw weights. A checkpoint that is not this run's
    (other tensors, dtypes or shapes) or holds NaN/inf weights is refused."""
    run = RunDir(run_dir)
    config = run.read_config()
    tensors, epoch = run.load_checkpoint()
    torch.manual_seed(0)
    D, G = build_models(config)
    check_checkpoint(run.checkpoint_path, tensors, config, D, G)
    D.load_state_dict(unprefixed("D", tensors))
    G.load_state_dict(unprefixed("G", tensors))
    ema = ParameterEMA(D, config.ema.decay, config.ema.bias_correction)
    if use_ema and unprefixed("ema.shadow", tensors):
        ema.load_state_dict(unprefixed("ema", tensors))
        with torch.no_grad():
            torch._foreach_copy_(ema.params(), ema.averaged())
    return config, D.eval(), G, epoch


def run_test_logits(
    run_dir: str | Path, use_ema: bool = True, data_dir: str | None = None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(logits (N, K), labels (N,), epoch) of the run's D on its dataset's test split."""
    config, D, _, epoch = load_run_models(run_dir, use_ema)
    if not config.supervised:
        raise ImprovedGANError(f"{run_dir} is an unsupervised run (labels: 0); its D has no test error")
    if data_dir is not None:
        config = config.model_copy(update={"data_dir": data_dir})
    x_test, y_test = load_split(config, "test")
    return predict_logits(D, x_test, test_batch_size(D, config)), y_test, epoch


def evaluate_run(run_dir: str | Path, use_ema: bool = True, data_dir: str | None = None) -> dict[str, float]:
    """Test errors of a run's discriminator: ``{"epoch", "test_errors", "test_error", "n"}``."""
    logits, labels, epoch = run_test_logits(run_dir, use_ema, data_dir)
    errors = int((logits.argmax(1) != labels).sum())
    return {"epoch": epoch, "test_errors": errors, "test_error": errors / len(labels), "n": len(labels)}


def sample_from_run(run_dir: str | Path, n: int, seed: int = 0, batch_size: int = 100) -> np.ndarray:
    """``n`` generator samples of a run as uint8 images (N, H, W), or (N, H, W, 3) for colour
    models (:func:`improved_gan.metrics.sample_generator`: batches of ``batch_size``, batch
    statistics in G's batch norm, as in the reference)."""
    if n <= 0:
        raise ImprovedGANError(f"number of samples must be positive, got {n}")
    config, _, G, _ = load_run_models(run_dir, use_ema=False)
    return sample_generator(G, n, seed, batch_size, data_range(config))


def run_source(run_dir: str | Path, n: int, seed: int = 0) -> ImageSource:
    """``n`` samples of a run, as an input of :func:`improved_gan.metrics.score`."""
    return array_source(sample_from_run(run_dir, n, seed), f"{n} samples of run {run_dir}")
