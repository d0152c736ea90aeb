"""G's batch norm over the batches of all processes under torchrun (config ``sync_batchnorm``),
and a switch back to per-process statistics when one process samples alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn

from improved_gan.models.layers import ShiftOnlyBatchNorm
from improved_gan.utils.distributed import all_reduce_sum


class SyncShiftOnlyBatchNorm(ShiftOnlyBatchNorm):
    """:class:`ShiftOnlyBatchNorm` with statistics over the batches of all processes.

    The mean and the biased variance are all-reduced with autograd (two collectives), so the
    output, and after gradient averaging the gradient, equal a single process's on the global batch.
    ``sync = False`` (see :func:`unsynced`) normalises with the local batch, e.g. when one
    process samples alone.
    """

    sync: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.sync and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        world = dist.get_world_size()
        dims = (0,) if x.dim() == 2 else (0, 2, 3)
        count = x.numel() // x.shape[1] * world
        mean = all_reduce_sum(x.sum(dims)) / count
        shape = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)
        centred = x - mean.view(shape)
        var = all_reduce_sum(centred.square().sum(dims)) / count
        return centred * torch.rsqrt(var + self.eps).view(shape) + self.bias.view(shape)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every :class:`ShiftOnlyBatchNorm` in ``module`` by :class:`SyncShiftOnlyBatchNorm`
    (same parameters, same state-dict keys); returns ``module``."""
    for name, child in module.named_children():
        if type(child) is ShiftOnlyBatchNorm:
            synced = SyncShiftOnlyBatchNorm(child.num_features, child.eps)
            synced.bias = child.bias
            setattr(module, name, synced)
        else:
            convert_sync_batchnorm(child)
    return module


@contextmanager
def unsynced(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block, synced batch norms of ``module`` use per-process statistics."""
    layers = [m for m in module.modules() if isinstance(m, SyncShiftOnlyBatchNorm)]
    for m in layers:
        m.sync = False
    try:
        yield module
    finally:
        for m in layers:
            m.sync = True
