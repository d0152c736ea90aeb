"""The collapse monitor: per-epoch signs of a D-wins episode, measured without touching the
training's random streams."""

from __future__ import annotations

import json

import torch
from conftest import tiny_config

from improved_gan.training import train
from improved_gan.training.build import build_state, load_split
from improved_gan.training.config import validate_config
from improved_gan.training.monitor import HIGH_DEAD_SHARE, collapse_signals, episode_warning


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


def test_an_episode_is_named_and_a_healthy_epoch_is_not():
    healthy = {"epoch": 3, "loss_unsupervised": 0.28, "fm_dead_share": 0.4}
    assert episode_warning(healthy) is None
    warning = episode_warning(
        {"epoch": 9, "loss_unsupervised": 0.03, "fm_dead_share": HIGH_DEAD_SHARE + 0.05}
    )
    assert (
        warning.startswith("epoch 9: collapse episode?")
        and "L_unsupervised 0.030" in warning
        and "60%" in warning
    )


def test_every_epoch_logs_the_signals(tmp_path):
    run = train(tiny_config(tmp_path, epochs=2, threads=1, sample_grid=False), progress=False)
    records = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [sorted(k for k in r if k in ("fm_dead_share", "g_output_scale")) for r in records] == [
        ["fm_dead_share", "g_output_scale"]
    ] * 2
