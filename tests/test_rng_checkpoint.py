"""Where a checkpoint keeps the noise stream (training.build.TrainingState): ``rng.torch`` for
noise drawn on the CPU, ``rng.cuda`` beside it for noise drawn on a GPU, so a GPU run (single or a
batched member) resumes with the same draws.

CI has no GPU: the routing tests stand a duck-typed generator in for a CUDA one and record what
reaches ``torch.cuda.set_rng_state``; the last test runs the real thing where a GPU is present.
"""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from improved_gan.errors import ImprovedGANError
from improved_gan.training import RunDir, train
from improved_gan.training.build import (
    CUDA_RNG_SPEC,
    TrainingState,
    build_state,
    check_checkpoint,
    load_split,
    shape_models,
)
from improved_gan.training.config import validate_config

CPU = torch.device("cpu")


class StandInCudaGenerator:
    """What TrainingState uses of a ``torch.Generator(device='cuda')``: device, get/set_state."""

    device = torch.device("cuda")

    def __init__(self, state: torch.Tensor) -> None:
        self.state = state.clone()

    def get_state(self) -> torch.Tensor:
        return self.state.clone()

    def set_state(self, state: torch.Tensor) -> None:
        if state.dtype != CUDA_RNG_SPEC[0] or tuple(state.shape) != CUDA_RNG_SPEC[1]:
            raise RuntimeError("RNG state is wrong size")
        self.state = state.clone()


@pytest.fixture
def config(tmp_path):
    return validate_config(tiny_config(tmp_path))


@pytest.fixture
def state(config):
    x, _ = load_split(config, "train")
    return build_state(config, CPU, x)


def _cuda_state(seed: int) -> torch.Tensor:
    return torch.arange(seed, seed + 16, dtype=torch.uint8)


def test_cpu_runs_keep_the_cpu_stream_only(state):
    """A single CPU run saves the global CPU state; a CPU member its own generator's."""
    tensors = state.tensors()
    assert "rng.cuda" not in tensors
    assert torch.equal(tensors["rng.torch"], torch.get_rng_state())
    state.noise_rng = torch.Generator().manual_seed(5)
    assert torch.equal(state.tensors()["rng.torch"], torch.Generator().manual_seed(5).get_state())
    assert not torch.equal(state.tensors()["rng.torch"], torch.get_rng_state())


def test_a_gpu_members_stream_is_saved_as_rng_cuda_and_passes_the_checkpoint_check(state, config):
    state.noise_rng = StandInCudaGenerator(_cuda_state(3))
    tensors = state.tensors()
    assert torch.equal(tensors["rng.cuda"], _cuda_state(3))
    assert torch.equal(tensors["rng.torch"], torch.get_rng_state())  # a CPU-shaped state, as the layout needs
    check_checkpoint("ckpt", tensors, config, *shape_models(config))  # accepted

    tensors["rng.cuda"] = tensors["rng.cuda"][:8]
    with pytest.raises(ImprovedGANError, match=r"rng\.cuda is uint8 \(8,\), the model needs uint8 \(16,\)"):
        check_checkpoint("ckpt", tensors, config, *shape_models(config))


def test_a_single_gpu_run_resumes_a_members_stream_on_the_global_cuda_generator(state, monkeypatch):
    """A member's checkpoint resumed as a single run on the GPU: its stream goes to the global
    CUDA generator of D's device, and the CPU stream to the global CPU generator."""
    state.noise_rng = StandInCudaGenerator(_cuda_state(7))
    tensors = state.tensors()
    cpu_saved = tensors["rng.torch"]

    single = TrainingState(state.D, state.G, state.opt_d, state.opt_g, state.ema, state.data_rng)
    monkeypatch.setattr(TrainingState, "noise_device", property(lambda self: torch.device("cuda", 0)))
    reached = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: reached.append((s, device)))
    torch.manual_seed(123)  # move the global CPU stream away from the saved one
    single.load(tensors)
    assert len(reached) == 1
    assert torch.equal(reached[0][0], _cuda_state(7)) and reached[0][1] == torch.device("cuda", 0)
    assert torch.equal(torch.get_rng_state(), cpu_saved)


def test_a_gpu_member_resumes_its_own_generator_and_leaves_the_global_cpu_stream(state):
    state.noise_rng = StandInCudaGenerator(_cuda_state(1))
    tensors = state.tensors()
    tensors["rng.torch"] = torch.Generator().manual_seed(99).get_state()
    member = StandInCudaGenerator(_cuda_state(50))
    state.noise_rng = member
    before = torch.get_rng_state()
    state.load(tensors)
    assert torch.equal(member.state, _cuda_state(1))
    assert torch.equal(torch.get_rng_state(), before)  # other members share the global CPU stream


def test_a_gpu_resume_without_rng_cuda_keeps_the_seed_stream_and_a_bad_one_is_refused(state):
    member = StandInCudaGenerator(_cuda_state(9))
    state.noise_rng = member
    tensors = state.tensors()
    del tensors["rng.cuda"]  # a checkpoint written on the CPU, resumed on the GPU
    state.load(tensors)
    assert torch.equal(member.state, _cuda_state(9))

    tensors["rng.cuda"] = torch.zeros(3, dtype=torch.uint8)
    with pytest.raises(ImprovedGANError, match=r"rng\.cuda is not a valid GPU random-generator state"):
        state.load(tensors)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_single_gpu_run_resumes_bit_exactly(tmp_path, one_thread):
    cfg = dict(device="cuda", epochs=2)
    train(tiny_config(tmp_path, **cfg, run_dir=str(tmp_path / "straight")), progress=False)
    train(tiny_config(tmp_path, **{**cfg, "epochs": 1}, run_dir=str(tmp_path / "resumed")), progress=False)
    train(tiny_config(tmp_path, **cfg, run_dir=str(tmp_path / "resumed")), resume=True, progress=False)
    straight, _ = RunDir(tmp_path / "straight").load_checkpoint()
    resumed, _ = RunDir(tmp_path / "resumed").load_checkpoint()
    assert "rng.cuda" in straight
    assert all(torch.equal(resumed[n], straight[n]) for n in straight)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_member_resumes_as_a_single_gpu_run(tmp_path, one_thread):
    from improved_gan.training.batched import train_batched

    cfg = dict(device="cuda", seed=3)
    train_batched([tiny_config(tmp_path, **cfg, epochs=1, run_dir=str(tmp_path / "m"))], progress=False)
    train(tiny_config(tmp_path, **cfg, epochs=2, run_dir=str(tmp_path / "m")), resume=True, progress=False)
    train(tiny_config(tmp_path, **cfg, epochs=2, run_dir=str(tmp_path / "s")), progress=False)
    ours, _ = RunDir(tmp_path / "m").load_checkpoint()
    theirs, _ = RunDir(tmp_path / "s").load_checkpoint()
    assert torch.equal(ours["rng.cuda"], theirs["rng.cuda"])  # the same GPU noise draws
    assert torch.equal(ours["rng.data"], theirs["rng.data"])
