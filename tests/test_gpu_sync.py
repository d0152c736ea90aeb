"""On a GPU, an epoch of training waits for the device a fixed number of times, not once per
iteration: the loss sums stay on the device and, with ``data_on_device``, the batches are cut
there (``training.loop.train_epoch``, ``training.batched.train_members_epoch``).

``torch.cuda.set_sync_debug_mode("warn")`` warns at every operation that makes the host wait for
the GPU; an epoch of 6 iterations must warn as often as one of 3. Needs a CUDA GPU (skipped here).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import tiny_config

from improved_gan.training.batched import BatchedRuns, build_members, train_members_epoch
from improved_gan.training.build import build_state, load_split
from improved_gan.training.config import validate_config
from improved_gan.training.loop import _batches, train_epoch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def _host_waits(fn, *args, **kwargs) -> int:
    """How many synchronizing CUDA operations ``fn(*args, **kwargs)`` makes."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def _on_device(config):
    x, y = load_split(config, "train")
    return x.to(CUDA), y.to(CUDA)


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_a_single_runs_epoch_waits_for_the_gpu_a_fixed_number_of_times(tmp_path, amp):
    waits = {}
    for n in (300, 600):  # 3 and 6 iterations of 100
        config = validate_config(
            tiny_config(tmp_path, device="cuda", data_on_device=True, amp=amp, max_train_examples=n)
        )
        x, y = _on_device(config)
        state = build_state(config, CUDA, x)
        batches = _batches(config, x, y)
        train_epoch(state, batches, config, CUDA, progress=False)  # warm-up: cuBLAS handles, caches
        waits[n] = _host_waits(train_epoch, state, batches, config, CUDA, progress=False)
    assert waits[600] == waits[300], waits


def test_a_batched_epoch_waits_for_the_gpu_a_fixed_number_of_times(tmp_path):
    waits = {}
    for n in (300, 600):
        configs = [
            validate_config(
                tiny_config(tmp_path, device="cuda", data_on_device=True, seed=s, max_train_examples=n)
            )
            for s in (1, 2)
        ]
        x, y = _on_device(configs[0])
        members, streams = build_members(configs, CUDA, x, y)
        batched = BatchedRuns(configs, members, CUDA)
        batched.set_lr(configs[0].lr)
        train_members_epoch(batched, streams)  # warm-up
        waits[n] = _host_waits(train_members_epoch, batched, streams)
    assert waits[600] == waits[300], waits
