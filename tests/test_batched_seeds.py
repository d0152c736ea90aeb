"""Seeds batched in one process (improved_gan.training.batched): member k follows the single run
of its seed, draws for draw, and writes a run directory that a single run can resume."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import TINY_SETS, tiny_config

from improved_gan.cli import main
from improved_gan.errors import ImprovedGANError
from improved_gan.training import RunDir, train
from improved_gan.training.batched import (
    BatchedRuns,
    MemberNoise,
    _stack_batches,
    build_members,
    check_batchable,
    train_batched,
)
from improved_gan.training.build import build_state, load_split
from improved_gan.training.config import validate_config
from improved_gan.training.loop import _batches
from improved_gan.training.steps import discriminator_step, generator_loss, generator_step
from improved_gan.utils.distributed import SINGLE

CPU = torch.device("cpu")
MEMBERS = ((1, 20), (2, 50))  # (seed, labels): members differ in both


def _configs(tmp_path, **overrides):
    return [
        validate_config(tiny_config(tmp_path, seed=s, labels=n, run_dir=str(tmp_path / f"b{s}"), **overrides))
        for s, n in MEMBERS
    ]


def test_one_iteration_matches_single_runs(tmp_path, one_thread):
    """After one D and G step each member's parameters, Adam moments and EMA equal a single run
    of its seed (the plain steps of training.steps) to 1e-7 absolute, and it drew the same random numbers."""
    configs = _configs(tmp_path)
    x, y = load_split(configs[0], "train")
    members, streams = build_members(configs, CPU, x, y)
    batched = BatchedRuns(configs, members, CPU)
    batched.set_lr(0.003)
    batches = [next(s.epoch(m.data_rng)) for s, m in zip(streams, members)]
    losses = batched.iteration(*_stack_batches(batches, CPU))
    batched.to_members()
    for k, config in enumerate(configs):
        single = build_state(config, CPU, x)
        single.set_lr(0.003)
        b = next(_batches(config, x, y).epoch(single.data_rng))
        sup, unsup, _ = discriminator_step(single, config, b.x_lab, b.y_lab, b.x_unl, 100, False, SINGLE)
        gen = generator_step(
            single, config, generator_loss(config, single, 100, SINGLE), b.x_unl, b.x_unl2, SINGLE
        )
        ours, theirs = members[k].tensors(), single.tensors()
        assert set(ours) == set(theirs)
        assert torch.equal(ours["rng.torch"], theirs["rng.torch"])  # the same noise draws
        assert torch.equal(ours["rng.data"], theirs["rng.data"])  # the same batch permutations
        for name, tensor in theirs.items():  # the summation order of bmm against mm: ~1e-8 absolute
            if tensor.is_floating_point():
                torch.testing.assert_close(ours[name], tensor, rtol=1e-5, atol=1e-7, msg=name)
        torch.testing.assert_close(
            losses[k, :3], torch.stack([sup, unsup, gen]).detach(), rtol=1e-6, atol=1e-6
        )
    # the members differ from each other: different seeds, different labelled subsets
    assert not torch.equal(members[0].D.output.weight_v, members[1].D.output.weight_v)


def test_batched_runs_follow_single_runs_and_resume(tmp_path, one_thread):
    """Two epochs batched: every member takes exactly the draws of the single run of its seed and
    its metrics follow that run, and one epoch + a batched resume gives the uninterrupted batched
    run bit for bit. Followed, not equal: the batched matmul's rounding (1e-7 a step, see the test
    above) is amplified by Adam's first steps, whose updates are ~lr·sign(g) wherever a gradient
    is near zero; the single run of seed 1 at 2 threads instead of 1 moves its epoch-2 losses by
    3e-3 relative on this data, and the batched member by the same."""
    configs = [
        tiny_config(tmp_path, seed=s, labels=n, epochs=2, run_dir=str(tmp_path / f"b{s}")) for s, n in MEMBERS
    ]
    dirs = train_batched(configs, progress=False)
    assert dirs == [tmp_path / "b1", tmp_path / "b2"]
    for (seed, n_labels), batched_dir in zip(MEMBERS, dirs):
        single_dir = train(
            tiny_config(tmp_path, seed=seed, labels=n_labels, epochs=2, run_dir=str(tmp_path / f"s{seed}")),
            progress=False,
        )
        ours, theirs = RunDir(batched_dir).read_metrics(), RunDir(single_dir).read_metrics()
        assert [r["epoch"] for r in ours] == [1, 2]
        for a, b in zip(ours, theirs):
            assert abs(a["test_errors"] - b["test_errors"]) <= 3, (a, b)
            for key in ("loss_supervised", "loss_unsupervised", "loss_generator"):
                assert a[key] == pytest.approx(b[key], rel=2e-2), (key, a, b)
        assert RunDir(batched_dir).read_config().labels == n_labels
        t_ours, _ = RunDir(batched_dir).load_checkpoint()
        t_theirs, _ = RunDir(single_dir).load_checkpoint()
        assert torch.equal(t_ours["rng.torch"], t_theirs["rng.torch"])
        assert torch.equal(t_ours["rng.data"], t_theirs["rng.data"])
        assert t_ours.keys() == t_theirs.keys()

    halves = [dict(c, epochs=1, run_dir=str(tmp_path / f"r{c['seed']}")) for c in configs]
    train_batched(halves, progress=False)
    train_batched([dict(c, epochs=2) for c in halves], resume=True, progress=False)
    for seed, _ in MEMBERS:
        resumed, _ = RunDir(tmp_path / f"r{seed}").load_checkpoint()
        straight, _ = RunDir(tmp_path / f"b{seed}").load_checkpoint()
        assert all(torch.equal(resumed[n], straight[n]) for n in straight)


def test_a_member_resumes_as_a_single_run(tmp_path, one_thread):
    """A member's checkpoint holds its own noise stream: `train --resume` of one member continues
    it with the same draws as a single run that was never batched."""
    train_batched([tiny_config(tmp_path, seed=3, epochs=1, run_dir=str(tmp_path / "m"))], progress=False)
    train(tiny_config(tmp_path, seed=3, epochs=2, run_dir=str(tmp_path / "m")), resume=True, progress=False)
    train(tiny_config(tmp_path, seed=3, epochs=2, run_dir=str(tmp_path / "s")), progress=False)
    ours, _ = RunDir(tmp_path / "m").load_checkpoint()
    theirs, _ = RunDir(tmp_path / "s").load_checkpoint()
    assert torch.equal(ours["rng.torch"], theirs["rng.torch"])
    assert torch.equal(ours["rng.data"], theirs["rng.data"])
    resumed, single = RunDir(tmp_path / "m").read_metrics()[-1], RunDir(tmp_path / "s").read_metrics()[-1]
    assert resumed["epoch"] == single["epoch"] == 2
    assert resumed["loss_unsupervised"] == pytest.approx(single["loss_unsupervised"], rel=2e-2)


def _draw_calls(fn, *args) -> int:
    """How many random fills (normal_, uniform_) ``fn(*args)`` dispatches."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.__name__.split(".")[0] in ("normal_", "uniform_"):
                Count.calls += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn(*args)
    return Count.calls


def test_shared_member_noise_draws_each_noise_tensor_once_for_all_members(tmp_path, one_thread):
    """``member_noise: shared``: one iteration of 2 members makes one random fill per noise tensor
    (own generators: one per member), the members' noise differs, and it is one (K, N, C) draw from
    the shared generator's stream."""
    calls = {}
    for mode in ("own", "shared"):
        configs = _configs(tmp_path, member_noise=mode)
        x, y = load_split(configs[0], "train")
        members, streams = build_members(configs, CPU, x, y)
        batched = BatchedRuns(configs, members, CPU)
        batched.set_lr(0.003)
        batches = _stack_batches([next(s.epoch(m.data_rng)) for s, m in zip(streams, members)], CPU)
        calls[mode] = _draw_calls(batched.iteration, *batches)
    assert calls["own"] == 2 * calls["shared"] and calls["shared"] == 18  # 2 z draws + 6 + 5 + 5 noise layers

    generator = torch.Generator().manual_seed(5)
    twin = torch.Generator().manual_seed(5)
    noise = MemberNoise([generator, generator]).add_normal(torch.zeros(2, 4, 6), 0.5)
    assert torch.equal(noise, torch.empty(2, 4, 6).normal_(0.0, 0.5, generator=twin))
    assert not torch.equal(noise[0], noise[1])


def test_shared_member_noise_resumes_bit_for_bit(tmp_path, one_thread):
    """Every member's checkpoint holds the one shared stream, so a batched resume continues it."""
    configs = [
        tiny_config(
            tmp_path, seed=s, labels=n, epochs=2, member_noise="shared", run_dir=str(tmp_path / f"b{s}")
        )
        for s, n in MEMBERS
    ]
    train_batched(configs, progress=False)
    halves = [dict(c, epochs=1, run_dir=str(tmp_path / f"r{c['seed']}")) for c in configs]
    train_batched(halves, progress=False)
    train_batched([dict(c, epochs=2) for c in halves], resume=True, progress=False)
    straight = [RunDir(tmp_path / f"b{seed}").load_checkpoint()[0] for seed, _ in MEMBERS]
    assert torch.equal(straight[0]["rng.torch"], straight[1]["rng.torch"])  # one stream
    for seed, t in zip((s for s, _ in MEMBERS), straight):
        resumed, _ = RunDir(tmp_path / f"r{seed}").load_checkpoint()
        assert all(torch.equal(resumed[n], t[n]) for n in t)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"techniques": {"minibatch_discrimination": True}}, "techniques.minibatch_discrimination: true"),
        ({"techniques": {"historical_averaging": 0.1}}, "techniques.historical_averaging: 0.1"),
        ({"generator_loss": "minimax"}, "generator_loss: minimax"),
        ({"model": "conv28"}, "model: conv28"),
        ({"labels": 0}, "labels: 0"),
    ],
)
def test_unsupported_runs_are_refused(tmp_path, change, named):
    config = validate_config({**tiny_config(tmp_path), **change})
    with pytest.raises(ImprovedGANError, match=f"this run has {re.escape(named)}.*one at a time"):
        check_batchable([config])


def test_members_may_differ_only_in_seed_and_labels(tmp_path):
    a = validate_config(tiny_config(tmp_path, seed=1, run_dir=str(tmp_path / "a")))
    b = validate_config(tiny_config(tmp_path, seed=2, lr=0.001, run_dir=str(tmp_path / "b")))
    with pytest.raises(ImprovedGANError, match="seeds 1 and 2 differ in lr"):
        check_batchable([a, b])
    same = validate_config(tiny_config(tmp_path, seed=2, run_dir=str(tmp_path / "a")))
    with pytest.raises(ImprovedGANError, match="share the run directory"):
        check_batchable([a, same])


def test_resume_of_members_at_different_epochs_is_refused(tmp_path, one_thread):
    train(tiny_config(tmp_path, seed=1, run_dir=str(tmp_path / "b1")), progress=False)
    configs = [
        tiny_config(tmp_path, seed=s, labels=n, epochs=2, run_dir=str(tmp_path / f"b{s}")) for s, n in MEMBERS
    ]
    with pytest.raises(ImprovedGANError, match="b1 has a checkpoint but .*b2 has none"):
        train_batched(configs, resume=True, progress=False)
    assert not (tmp_path / "b2").exists()  # nothing was written


def test_cli_train_seeds(tmp_path, capsys, one_thread):
    args = ["train", "mnist-fm-2016", "--labels", "20", "--epochs", "1", "--device", "cpu", "--quiet"]
    args += [*TINY_SETS, "--set", f"runs_root={tmp_path}"]
    assert main([*args, "--seeds", "1", "2"]) == 0
    out = capsys.readouterr().out
    found = sorted(tmp_path.glob("mnist-fm-2016-mnist-l20-s*"))
    assert [p.name.split("-s")[1][0] for p in found] == ["1", "2"]  # one run directory per seed
    for seed, path in zip((1, 2), found):
        run = RunDir(path)
        assert run.read_config().seed == seed
        assert run.read_metrics()[-1]["batched_runs"] == 2
        assert f"{run.path}: epoch 1, test errors" in out
    assert main([*args, "--seeds", "3", "--run-dir", str(tmp_path / "x")]) == 1
    assert "--run-dir names one run, but --seeds trains several" in capsys.readouterr().err
    assert main([*args, "--seeds", "3", "3"]) == 1
    assert "names a seed twice" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
