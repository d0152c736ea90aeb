"""The collapse monitor: per-epoch signs of a D-wins episode, measured without touching the
training's random streams."""

from __future__ import annotations

import json

import torch
from conftest import tiny_config

from improved_gan.training import train
from improved_gan.training.build import build_state, load_split
from improved_gan.training.config import validate_config
from improved_gan.training.monitor import (
    HIGH_DEAD_SHARE,
    SETTLED_EPOCH,
    WORSE_THAN_BEST,
    collapse_signals,
    episode_warning,
)


def _state(tmp_path):
    config = validate_config(tiny_config(tmp_path, threads=1))
    x, _ = load_split(config, "train")
    return config, build_state(config, torch.device("cpu"), x)


def test_signals_are_shares_and_scales_and_draw_no_random_numbers(tmp_path):
    config, state = _state(tmp_path)
    before = torch.get_rng_state()
    signals = collapse_signals(state, config, 64)
    assert torch.equal(torch.get_rng_state(), before) and state.D.training
    assert 0.0 <= signals["fm_dead_share"] <= 1.0
    output_scale = state.G.net[-2].scale.detach()  # the MNIST G's column-normalised output layer
    assert signals["g_output_scale"] == float(output_scale.abs().mean())
    with torch.no_grad():
        state.D.hidden[-1].bias.fill_(-1e6)  # every feature-matching unit dead
    assert collapse_signals(state, config, 64)["fm_dead_share"] == 1.0


def _epoch(epoch: int, **metrics) -> dict:
    return {"epoch": epoch, "loss_unsupervised": 0.3, "loss_generator": 3.0, "fm_dead_share": 0.4} | metrics


def test_a_healthy_epoch_and_the_first_epochs_are_not_episodes():
    assert episode_warning(_epoch(9)) is None
    # every lr-0.003 run starts like this and most recover: not flagged before SETTLED_EPOCH
    early = _epoch(SETTLED_EPOCH, loss_unsupervised=0.03, loss_generator=40.0, fm_dead_share=0.9)
    assert episode_warning(early, [_epoch(e, fm_dead_share=0.1) for e in range(1, SETTLED_EPOCH)]) is None


def test_d_winning_after_the_first_epochs_is_named():
    late = SETTLED_EPOCH + 1
    warning = episode_warning(_epoch(late, loss_unsupervised=0.03, loss_generator=44.0))
    assert warning.startswith(f"epoch {late}: collapse episode?")
    assert "L_unsupervised 0.030 < 0.05" in warning and "feature-matching loss 44.0 > 20" in warning
    # a minimax or non-saturating G loss is on another scale: only feature matching's is judged
    assert episode_warning(_epoch(late, loss_generator=44.0), feature_matching=False) is None


def test_dead_units_count_when_their_share_rises_not_when_it_stays_high():
    settled = range(SETTLED_EPOCH + 1, SETTLED_EPOCH + 4)
    now = SETTLED_EPOCH + 4
    rising = episode_warning(_epoch(now, fm_dead_share=0.62), [_epoch(e, fm_dead_share=0.4) for e in settled])
    assert "62% of the feature units dead on all fakes (up from 40%)" in rising
    steady = [_epoch(e, fm_dead_share=0.6) for e in settled]
    assert episode_warning(_epoch(now, fm_dead_share=HIGH_DEAD_SHARE + 0.1), steady) is None


def test_test_errors_above_the_best_so_far_are_named_at_any_epoch():
    history = [_epoch(1, test_errors=2000), _epoch(2, test_errors=1500), _epoch(3, test_errors=1700)]
    worse = WORSE_THAN_BEST * 1500
    warning = episode_warning(_epoch(4, test_errors=int(worse) + 1), history)
    assert f"test errors {int(worse) + 1}, " in warning and "the best so far (1500 at epoch 2)" in warning
    assert episode_warning(_epoch(4, test_errors=int(worse)), history) is None
    # a resumed run's later records (past the checkpoint) are not its history
    assert episode_warning(_epoch(2, test_errors=1500), [_epoch(3, test_errors=100)]) is None


def test_every_epoch_logs_the_signals(tmp_path):
    run = train(tiny_config(tmp_path, epochs=2, threads=1, sample_grid=False), progress=False)
    records = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [sorted(k for k in r if k in ("fm_dead_share", "g_output_scale")) for r in records] == [
        ["fm_dead_share", "g_output_scale"]
    ] * 2
