"""Load a finished (or running) training run: test errors, test logits and generator samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from improved_gan.errors import ImprovedGANError
from improved_gan.training.checkpoint import load_checkpoint, unprefixed
from improved_gan.training.config import TrainConfig, validate_config
from improved_gan.training.images import to_uint8_images
from improved_gan.training.trainer import (
    CHECKPOINT,
    build_models,
    data_range,
    load_split,
    predict_logits,
    test_batch_size,
)


def load_run_config(run_dir: str | Path) -> TrainConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ImprovedGANError(
            f"{run_dir} is not a run directory (no config.yaml); train with `improved-gan train`"
        )
    return validate_config(yaml.safe_load(path.read_text()), str(path))


def load_run_models(run_dir: str | Path, use_ema: bool = True):
    """(config, D, G, epoch) from a run's last checkpoint; D carries the EMA weights if asked and
    available (as the reference tests), else the raw weights."""
    config = load_run_config(run_dir)
    tensors, metadata = load_checkpoint(Path(run_dir) / CHECKPOINT)
    torch.manual_seed(0)
    D, G = build_models(config)
    D.load_state_dict(unprefixed("D", tensors))
    G.load_state_dict(unprefixed("G", tensors))
    shadow = unprefixed("ema.shadow", tensors)
    if use_ema and shadow:
        count = int(tensors["ema.num_updates"])
        correction = 1 - config.ema.decay**count if config.ema.bias_correction and count else 1.0
        params = dict(D.named_parameters())
        with torch.no_grad():
            for name, value in shadow.items():
                params[name].copy_(value / correction)
    return config, D.eval(), G, int(metadata["epoch"])


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


@torch.no_grad()
def sample_from_run(run_dir: str | Path, n: int, seed: int = 0, batch_size: int = 100) -> np.ndarray:
    """``n`` generator samples of a run as uint8 images (N, H, W), or (N, H, W, 3) for colour
    models, drawn in batches of
    ``batch_size`` (the generator's batch norm uses batch statistics, as in the reference)."""
    if n <= 0:
        raise ImprovedGANError(f"number of samples must be positive, got {n}")
    config, _, G, _ = load_run_models(run_dir, use_ema=False)
    G.train()
    rng = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        z = G.sample_noise(batch_size, generator=rng)
        chunks.append(to_uint8_images(G(z), value_range=data_range(config))[: n - start])
    return np.concatenate(chunks)
