"""Training on several processes with ``torchrun`` (one process per GPU, or several on a CPU).

What is exact and what is per process (README "Scaling out"):

* Every process holds a full replica of D and G, built from the same seed and then broadcast
  from rank 0. After each backward pass the gradients of the player that steps are averaged over
  the processes with one flat all-reduce (:meth:`DistContext.average_gradients`): what DDP's
  reducer computes, done by hand because D runs several forward passes per step (separate real
  and generated passes with minibatch discrimination, D's features inside G's loss with D's
  weights frozen), which DDP's one-forward-one-backward bookkeeping does not fit. Replicas
  therefore stay identical, and so do the test-time EMA of D's weights and the
  historical-averaging means, which each process updates from those identical weights.
* The data: every process draws the *same* global batch order from the shared, checkpointed
  batch-order generator and keeps its contiguous slice (:meth:`DistContext.shard`); the global
  batch is exactly the single-process batch, and the per-process batch is
  ``batch_size / world_size``. Generated batches are drawn per process from the torch RNG,
  reseeded per (seed, epoch, rank).
* Losses that are means over examples give the single-process gradient exactly. Feature matching
  is a function of batch means, so its means are all-reduced (:meth:`DistContext.global_mean`)
  and it is exact too.
* Per process: minibatch discrimination compares examples within the per-process batch
  (gathering features across processes is not offered), and G's batch norm uses per-process
  statistics unless ``sync_batchnorm: true``
  (:class:`improved_gan.models.sync_batch_norm.SyncShiftOnlyBatchNorm`). Virtual batch
  norm uses the fixed reference batch (the same buffer on every process) plus each example, so
  it does not depend on the sharding.

Single-process runs (no ``WORLD_SIZE`` > 1 in the environment) never touch ``torch.distributed``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from improved_gan.errors import ImprovedGANError


@dataclass(frozen=True)
class DistContext:
    """This process's place among ``world_size`` processes (rank 0 alone writes files)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def check_batch_size(self, batch_size: int) -> int:
        """The per-process batch, ``batch_size / world_size``; an error when it does not divide."""
        if batch_size % self.world_size:
            raise ImprovedGANError(
                f"batch_size {batch_size} is not divisible by the {self.world_size} processes; choose a "
                f"batch size that is a multiple of the number of processes (or another --nproc_per_node)"
            )
        return batch_size // self.world_size

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This process's contiguous slice of a global batch (N, ...) -> (N / world_size, ...)."""
        if not self.enabled:
            return x
        b = self.check_batch_size(len(x))
        return x[self.rank * b : (self.rank + 1) * b]

    @torch.no_grad()
    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        """Replace each ``p.grad`` by its mean over the processes (one flat all-reduce)."""
        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def global_mean(self, features: torch.Tensor) -> torch.Tensor:
        """The mean over the *global* batch of per-process features (B, ...) -> (1, F), flattened.

        Its value is the all-reduced mean; its gradient is that of the local mean, so after
        :meth:`average_gradients` a loss of global means gets exactly the single-process gradient.
        """
        local = features.flatten(1).mean(0)
        if not self.enabled:
            return local[None]
        total = local.detach().clone()
        dist.all_reduce(total)
        return (total / self.world_size + (local - local.detach()))[None]

    @torch.no_grad()
    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """In-place sum over the processes (identity on one process; CPU tensors work with NCCL)."""
        if not self.enabled:
            return t
        if dist.get_backend() == "nccl" and not t.is_cuda:
            on_gpu = t.cuda()
            dist.all_reduce(on_gpu)
            return t.copy_(on_gpu)
        dist.all_reduce(t)
        return t

    @torch.no_grad()
    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every process (as DDP does at construction)."""
        if not self.enabled:
            return
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)

    def seed_epoch(self, seed: int, epoch: int) -> None:
        """Reseed the torch RNG (generated batches, noise layers) per (seed, epoch, rank)."""
        if self.enabled:
            state = np.random.SeedSequence([seed, epoch, self.rank]).generate_state(2, dtype=np.uint32)
            torch.manual_seed(int(state[0]) << 32 | int(state[1]))

    def require_same(self, value: int, what: str) -> None:
        """Raise on every process unless all of them hold the same integer ``value``."""
        if not self.enabled:
            return
        values = gather_rows(torch.tensor([[int(value)]]), self)
        if not bool((values == values[0]).all()):
            raise ImprovedGANError(f"the processes disagree on {what}: {values.flatten().tolist()}")

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


SINGLE = DistContext()


def context_from_env() -> DistContext:
    """The context torchrun describes in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (single if unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    return DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device: torch.device) -> tuple[DistContext, torch.device, bool]:
    """Join the process group torchrun set up: NCCL for CUDA, gloo on the CPU.

    Returns (context, this process's device, whether this call created the group). On one process
    nothing is initialised and ``device`` is returned unchanged.
    """
    ctx = context_from_env()
    if not ctx.enabled:
        return ctx, device, False
    if not dist.is_available():
        raise ImprovedGANError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    created = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=ctx.rank, world_size=ctx.world_size)
        created = True
    return ctx, device, created


class _AllReduceSum(torch.autograd.Function):
    """Σ over processes with gradient: the backward pass sums the incoming gradients as well."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``x`` over the processes."""
    return _AllReduceSum.apply(x)


def gather_rows(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate every process's (n_r, ...) tensor in rank order on every process (n_r may differ)."""
    if not ctx.enabled:
        return x
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else x.device
    local = x.to(device)
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, torch.tensor([len(x)], dtype=torch.int64, device=device))
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *x.shape[1:]), dtype=x.dtype, device=device)
    padded[: len(x)] = local
    chunks = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(chunks, padded)
    return torch.cat([c[: int(s.item())] for c, s in zip(chunks, sizes)]).to(x.device)


def shard_range(n: int, ctx: DistContext) -> tuple[int, int]:
    """This process's contiguous index range of ``n`` items: [rank·n // W, (rank + 1)·n // W)."""
    return ctx.rank * n // ctx.world_size, (ctx.rank + 1) * n // ctx.world_size


def replica_fingerprint(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """float64 (len(tensors),): the sum of each tensor, keys sorted; equal replicas give equal ones."""
    return torch.stack([tensors[k].detach().double().sum().cpu() for k in sorted(tensors)])


def check_replicas(tensors: dict[str, torch.Tensor], ctx: DistContext) -> None:
    """Raise when any process's ``tensors`` differ from rank 0's (compared by fingerprint)."""
    if not ctx.enabled:
        return
    mine = replica_fingerprint(tensors)
    everyone = gather_rows(mine[None], ctx)
    differing = [
        k
        for i, k in enumerate(sorted(tensors))
        if not torch.equal(everyone[:, i], everyone[0, i].expand(len(everyone)))
    ]
    if differing:
        raise ImprovedGANError(
            f"the processes' replicas diverged in {', '.join(differing[:5])}; this is a bug, please report it"
        )
