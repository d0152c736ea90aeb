"""Training and scoring on several processes: ``torchrun --nproc_per_node=2`` on the CPU (gloo)
against one process. The torchrun tests run ``tests/distributed_worker.py`` once and compare."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import yaml
from conftest import tiny_config
from safetensors.torch import load_file

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics import generator_scores, sample_generator
from improved_gan.metrics.score import score
from improved_gan.models import MnistGenerator, ShiftOnlyBatchNorm
from improved_gan.models.sync_batch_norm import SyncShiftOnlyBatchNorm, convert_sync_batchnorm
from improved_gan.training import train
from improved_gan.training.config import validate_config
from improved_gan.training.run_dir import CHECKPOINT
from improved_gan.utils.checkpoint import load_checkpoint
from improved_gan.utils.distributed import DistContext

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"

needs_gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this PyTorch build",
)


def torchrun(args: list[str], nproc: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=nproc ARGS`` (a free port; one CPU thread each)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def two_process_outputs(tmp_path_factory) -> tuple[dict, dict, dict]:
    """(rank 0, rank 1, one process) outputs of ``distributed_worker.run``."""
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available in this PyTorch build")
    import distributed_worker

    out = tmp_path_factory.mktemp("worker")
    torchrun([str(TESTS / "distributed_worker.py"), str(out)])
    ranks = [load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1)]
    assert not dist.is_initialized()
    return ranks[0], ranks[1], distributed_worker.run()


@needs_gloo
def test_two_processes_of_50_give_the_first_step_gradients_of_one_process_of_100(two_process_outputs):
    rank0, rank1, single = two_process_outputs
    names = [k for k in single if k.startswith("grad_")]
    assert any(k.startswith("grad_d.") for k in names) and any(k.startswith("grad_g.") for k in names)
    assert sorted(names) == sorted(k for k in rank0 if k.startswith("grad_"))
    for k in names:  # D: semi-supervised loss; G: feature matching of global means through synced BN
        assert single[k].abs().max() > 0, k
        torch.testing.assert_close(rank0[k], single[k], rtol=1e-4, atol=1e-7, msg=k)
        assert torch.equal(rank0[k], rank1[k]), k


@needs_gloo
def test_ema_and_historical_averaging_are_identical_on_all_ranks(two_process_outputs):
    rank0, rank1, single = two_process_outputs
    for prefix in ("ema.", "ha_d.", "ha_g."):
        keys = [k for k in rank0 if k.startswith(prefix)]
        assert keys, prefix
        for k in keys:
            assert torch.equal(rank0[k], rank1[k]), k
    assert int(rank0["ema.num_updates"]) == 3 and int(rank0["ha_d.count"]) == 4  # init + 3 steps
    state = [k for k in rank0 if k.split(".")[0] in ("D", "G", "opt_d", "opt_g")]
    assert all(torch.equal(rank0[k], rank1[k]) for k in state)
    for k in ("ema.shadow.output.weight_v", "ha_g.mean.0"):  # the same run as one process
        torch.testing.assert_close(rank0[k], single[k].to(rank0[k].dtype), rtol=1e-3, atol=1e-5)


@needs_gloo
def test_sharded_inception_score_and_fid_equal_the_single_process_ones(two_process_outputs):
    import distributed_worker

    rank0, rank1, single = two_process_outputs
    images, reference = distributed_worker.score_inputs()
    one = score(
        images, ("is", "fid"), distributed_worker.toy_extractor(), reference=reference, progress=False
    )
    assert torch.equal(rank0["is"], rank1["is"]) and torch.equal(rank0["fid"], rank1["fid"])
    np.testing.assert_allclose(
        rank0["is"].numpy(), [one["inception_score_mean"], one["inception_score_std"]], rtol=1e-10
    )
    np.testing.assert_allclose(rank0["fid"].item(), one["frechet_inception_distance"], rtol=1e-10)
    assert one["inception_score_mean"] > 1.5  # a non-trivial score


@needs_gloo
def test_sharded_generator_samples_equal_the_single_process_samples(two_process_outputs):
    rank0, _, _ = two_process_outputs
    torch.manual_seed(0)
    expected = sample_generator(MnistGenerator(), 250, seed=4, batch_size=100)
    np.testing.assert_array_equal(rank0["samples"].numpy(), expected)


@needs_gloo
def test_sharded_score_hook_equals_the_single_process_hook(two_process_outputs):
    import distributed_worker

    rank0, rank1, single = two_process_outputs
    torch.manual_seed(0)
    with distributed_worker.toy_dataset_classifier():
        one = generator_scores(MnistGenerator(), "mnist", 250, seed=4)
    assert torch.equal(rank0["hook"], rank1["hook"])
    np.testing.assert_allclose(
        rank0["hook"].numpy(), [one[k] for k in distributed_worker.HOOK_KEYS], rtol=1e-10
    )


@needs_gloo
def test_checkpoint_written_by_two_processes_resumes_on_one(tmp_path):
    config = tiny_config(tmp_path, techniques={"historical_averaging": 0.001}, sync_batchnorm=True)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    result = torchrun(["-m", "improved_gan", "train", str(path), "--quiet"])
    assert result.stdout.count("epoch 1, test errors") == 1  # rank 0 alone reports
    run = Path(config["run_dir"])
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints",
        "config.yaml",
        "learning_curves.png",
        "metrics.jsonl",
        "samples",
    ]
    assert not list(run.rglob("*.tmp"))
    first = json.loads((run / "metrics.jsonl").read_text())
    assert first["epoch"] == 1 and first["processes"] == 2
    tensors, meta = load_checkpoint(run / CHECKPOINT)
    assert meta["epoch"] == "1" and int(tensors["ha_d.count"]) == 1 + 3  # init + 300 / 100 steps
    train({**config, "epochs": 2}, resume=True, progress=False)  # one process, no torch.distributed
    assert not dist.is_initialized()
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2] and "processes" not in lines[1]
    resumed, meta = load_checkpoint(run / CHECKPOINT)
    assert meta["epoch"] == "2" and int(resumed["ha_d.count"]) == 1 + 6
    assert int(resumed["ema.num_updates"]) == 6
    assert not torch.equal(resumed["D.output.weight_v"], tensors["D.output.weight_v"])


def test_batch_size_not_divisible_by_the_processes_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ImprovedGANError, match="batch_size 100 is not divisible by the 3 processes"):
        DistContext(0, 3).check_batch_size(100)
    assert DistContext(1, 4).check_batch_size(100) == 25
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ImprovedGANError, match="not divisible") as err:
        train(tiny_config(tmp_path), progress=False)
    assert "\n" not in str(err.value) and not (tmp_path / "run").exists()
    assert not dist.is_initialized()


def test_shard_takes_contiguous_equal_slices_of_the_global_batch():
    x = torch.arange(12)
    parts = [DistContext(r, 3).shard(x) for r in range(3)]
    assert torch.equal(torch.cat(parts), x) and all(len(p) == 4 for p in parts)


def test_single_process_training_never_initialises_torch_distributed(tmp_path):
    train(tiny_config(tmp_path), progress=False)
    assert not dist.is_initialized()


def test_sync_batchnorm_converts_g_keeping_parameters_and_equals_batchnorm_on_one_process():
    torch.manual_seed(0)
    G = MnistGenerator()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    bias = G.net[1].bias
    z = torch.rand(20, 100)
    out = G(z)
    convert_sync_batchnorm(G)
    assert isinstance(G.net[1], SyncShiftOnlyBatchNorm) and G.net[1].bias is bias
    assert not any(type(m) is ShiftOnlyBatchNorm for m in G.modules())
    assert G.state_dict().keys() == before.keys()
    torch.testing.assert_close(G(z), out)


def test_sync_batchnorm_with_vbn_is_rejected():
    with pytest.raises(ImprovedGANError, match="sync_batchnorm"):
        validate_config({"sync_batchnorm": True, "techniques": {"vbn": True}})
