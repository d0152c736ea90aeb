"""Run by ``tests/test_distributed.py`` under ``torchrun --nproc_per_node=2`` (and in-process as the
single-process reference): a few training steps through the trainer's own ``train_epoch`` and a
sharded score, each rank saving what it computed under ``OUT/rank{r}.safetensors``.

Usage: ``torchrun --standalone --nproc_per_node=2 tests/distributed_worker.py OUT``
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from improved_gan.data import SemiSupervisedBatches, balanced_labelled_subset
from improved_gan.metrics import dataset_score, generator_scores, sample_generator
from improved_gan.metrics.extractors import Extractor
from improved_gan.metrics.score import score
from improved_gan.models import GaussianNoise, MnistGenerator
from improved_gan.models.sync_batch_norm import convert_sync_batchnorm, unsynced
from improved_gan.training.build import build_state, load_split
from improved_gan.training.config import validate_config
from improved_gan.training.loop import train_epoch
from improved_gan.utils.distributed import SINGLE, DistContext, gather_rows, init_distributed, shard_range

GLOBAL_BATCH = 100
STEPS = 3


def config():
    """Three steps of 100 (global) with EMA and historical averaging on and G's batch norm synced."""
    return validate_config(
        {
            "labels": 20,
            "max_train_examples": GLOBAL_BATCH * STEPS,
            "max_test_examples": 100,
            "init_examples": 100,
            "batch_size": GLOBAL_BATCH,
            "device": "cpu",
            "sync_batchnorm": True,
            "techniques": {"historical_averaging": 0.01},
            "ema": {"decay": 0.9},
        }
    )


def training_outputs(ctx: DistContext) -> dict[str, torch.Tensor]:
    """First-step gradients of D and G (``grad_d.*``, ``grad_g.*``) and the state after STEPS steps.

    D's noise layers are switched off and G's noise is one fixed global batch that each process
    slices, so one process with batch 100 and two with 50 see the same examples."""
    cfg = config()
    x, y = load_split(cfg, "train")
    lab = torch.from_numpy(balanced_labelled_subset(y.numpy(), cfg.labels_per_class, cfg.data_seed))
    batches = SemiSupervisedBatches(x[lab], y[lab], x, cfg.batch_size)
    state = build_state(cfg, torch.device("cpu"), x)
    ctx.broadcast_module(state.D)
    ctx.broadcast_module(state.G)
    convert_sync_batchnorm(state.G)
    for m in state.D.modules():
        if isinstance(m, GaussianNoise):
            m.sigma = 0.0
    z = torch.rand(GLOBAL_BATCH, 100, generator=torch.Generator().manual_seed(5))
    state.G.sample_noise = lambda n, generator=None, device=None: ctx.shard(z)
    grads: dict[str, torch.Tensor] = {}

    def recording(opt, prefix, params):
        step = opt.step

        def wrapped(*args, **kwargs):
            if not any(k.startswith(prefix) for k in grads):
                grads.update({f"{prefix}{n}": p.grad.clone() for n, p in params if p.grad is not None})
            return step(*args, **kwargs)

        opt.step = wrapped

    recording(state.opt_d, "grad_d.", list(state.D.named_parameters()))
    recording(state.opt_g, "grad_g.", list(state.G.named_parameters()))
    train_epoch(state, batches, cfg, torch.device("cpu"), False, ctx)
    return {**grads, **state.replica_tensors()}


class ToyExtractor(nn.Module):
    """A fixed random linear map of the pixels: (B, 1, 28, 28) uint8 -> (16 features, 10 logits)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.features = nn.Parameter(torch.randn(784, 16, generator=g) / 400, requires_grad=False)
        self.logits = nn.Parameter(torch.randn(16, 10, generator=g), requires_grad=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = x.flatten(1).float() @ self.features
        return f, f @ self.logits


def toy_extractor() -> Extractor:
    return Extractor("toy", ToyExtractor(), "toy linear map", 1, (28, 28), 64)


def score_inputs() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """530 uint8 images and reference statistics for FID."""
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(530, 28, 28)).astype(np.uint8)
    ref = rng.randn(200, 16)
    return images, {"mu": ref.mean(0), "sigma": np.cov(ref, rowvar=False)}


def scoring_outputs(ctx: DistContext) -> dict[str, torch.Tensor]:
    """The sharded IS/FID of the toy images, G's gathered sharded samples and the trainer's
    sharded score hook (dataset score and FID of G's samples)."""
    images, reference = score_inputs()
    result = score(images, ("is", "fid"), toy_extractor(), reference=reference, progress=False)  # sharded
    torch.manual_seed(0)
    G = MnistGenerator()
    lo, hi = shard_range(3, ctx)  # 250 samples in batches of 100
    with unsynced(G):
        local = sample_generator(G, 250, seed=4, batch_size=100, batches=range(lo, hi))
    samples = gather_rows(torch.from_numpy(local), ctx)
    with toy_dataset_classifier():
        hook = generator_scores(G, "mnist", 250, seed=4)  # sampling and scoring sharded under torchrun
    return {
        "is": torch.tensor(
            [result["inception_score_mean"], result["inception_score_std"]], dtype=torch.float64
        ),
        "fid": torch.tensor([result["frechet_inception_distance"]], dtype=torch.float64),
        "samples": samples,
        "hook": torch.tensor([hook[k] for k in HOOK_KEYS], dtype=torch.float64),
    }


HOOK_KEYS = ("dataset_score", "dataset_score_std", "dataset_fid")


@contextmanager
def toy_dataset_classifier() -> Iterator[None]:
    """The trainer's score hook with the toy extractor standing in for the cached MNIST classifier."""
    original = dataset_score.load_extractor
    dataset_score.load_extractor = lambda name, *args, **kwargs: toy_extractor()
    try:
        yield
    finally:
        dataset_score.load_extractor = original


def run(ctx: DistContext = SINGLE) -> dict[str, torch.Tensor]:
    return {**training_outputs(ctx), **scoring_outputs(ctx)}


if __name__ == "__main__":
    torch.set_num_threads(1)
    ctx, _, _ = init_distributed(torch.device("cpu"))
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in run(ctx).items()}
    save_file(tensors, str(out / f"rank{ctx.rank}.safetensors"), metadata={"world_size": str(ctx.world_size)})
