"""The one generator sampler: ``n`` uint8 samples of a generator module, seeded and in the
reference's way (a copy of G in training mode, so batch norm uses each batch's statistics)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from improved_gan.utils.images import to_uint8_images


@torch.no_grad()
def sample_generator(
    G: torch.nn.Module,
    n: int,
    seed: int = 0,
    batch_size: int = 100,
    value_range: tuple[float, float] = (0.0, 1.0),
    batches: range | None = None,
) -> np.ndarray:
    """``n`` samples of ``G`` as uint8 (N, H, W), or (N, H, W, 3) for colour generators, in
    batches of ``batch_size`` with noise from ``torch.Generator().manual_seed(seed)``;
    ``value_range`` is G's output range ((0, 1) sigmoid, (−1, 1) tanh). G itself and the global
    random stream are untouched. ``batches``: generate only these batch indices (every batch's
    noise is still drawn, so each keeps its noise), as a process does under torchrun; default all."""
    G = copy.deepcopy(G).train()
    device = next(G.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    starts = range(0, n, batch_size)
    keep = range(len(starts)) if batches is None else batches
    chunks = []
    for k, start in enumerate(starts):
        z = G.sample_noise(batch_size, generator=rng)
        if k in keep or (not chunks and k == len(starts) - 1):
            images = to_uint8_images(G(z.to(device)), value_range=value_range)[: n - start]
            chunks.append(images if k in keep else images[:0])  # an empty range keeps the sample shape
    return np.concatenate(chunks)
