"""The techniques wired into the trainer: switches, presets, separate passes, checkpoints."""

import json

import pytest
import torch
from conftest import tiny_config

from improved_gan.errors import ImprovedGANError
from improved_gan.training import evaluate_run, load_config, sample_from_run, train
from improved_gan.training.build import build_models
from improved_gan.training.config import preset_names
from improved_gan.training.run_dir import CHECKPOINT
from improved_gan.utils.checkpoint import load_checkpoint

# Small batches, one thread: CPU convolutions on a shared 2-core machine are slow otherwise.
SMALL = {
    "batch_size": 20,
    "max_train_examples": 60,
    "max_test_examples": 40,
    "init_examples": 40,
    "threads": 1,
}


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()  # ``threads: 1`` sets the process-wide count
    yield
    torch.set_num_threads(threads)


ALL_TECHNIQUES = {
    **SMALL,
    "max_train_examples": 40,  # two iterations per epoch
    "model": "mnist-conv",
    "conv": {"d_widths": [4, 8], "g_widths": [8, 4, 4]},
    "generator_loss": "minimax",
    "g_steps": 2,
    "techniques": {
        "minibatch_discrimination": True,
        "minibatch_kernels": 6,
        "historical_averaging": 0.01,
        "label_smoothing": 0.9,
        "vbn": True,
    },
}


def test_all_techniques_train_and_resume_bit_for_bit(tmp_path):
    full = train(
        tiny_config(tmp_path, **ALL_TECHNIQUES, epochs=2, run_dir=str(tmp_path / "full")), progress=False
    )
    part = tmp_path / "part"
    train(tiny_config(tmp_path, **ALL_TECHNIQUES, epochs=1, run_dir=str(part)), progress=False)
    train(tiny_config(tmp_path, **ALL_TECHNIQUES, epochs=2, run_dir=str(part)), resume=True, progress=False)
    a, b = load_checkpoint(full / CHECKPOINT)[0], load_checkpoint(part / CHECKPOINT)[0]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # historical averages and VBN's reference noise live in the checkpoint
    assert int(a["ha_d.count"]) == 1 + 2 * 2 and int(a["ha_g.count"]) == 1 + 2 * 2 * 2
    assert "G.reference_noise" in a and "D.minibatch.log_scale" in a
    records = [json.loads(s) for s in (full / "metrics.jsonl").read_text().splitlines()]
    assert all(0 <= r["test_errors"] <= 40 for r in records)
    images = sample_from_run(full, 3)
    assert images.shape == (3, 28, 28) and images.dtype.name == "uint8"


def test_minibatch_discrimination_sees_real_and_fake_batches_in_separate_passes(tmp_path, monkeypatch):
    from improved_gan.models import MnistDiscriminator

    sizes = []
    original = MnistDiscriminator.forward

    def spy(self, x, return_features=False):
        sizes.append(len(x))
        return original(self, x, return_features)

    monkeypatch.setattr(MnistDiscriminator, "forward", spy)
    mbd = {"minibatch_discrimination": True, "minibatch_kernels": 6}
    config = tiny_config(tmp_path, **SMALL, generator_loss="minimax", techniques=mbd, sample_grid=False)
    train(config, progress=False)
    # init pass (40), then per iteration lab / unl / gen and the G step (20 each), then test batches
    assert sizes[0] == 40 and set(sizes[1:]) == {20}
    sizes.clear()
    config = tiny_config(
        tmp_path, **SMALL, generator_loss="minimax", run_dir=str(tmp_path / "b"), sample_grid=False
    )
    train(config, progress=False)
    assert 60 in sizes  # without cross-example layers one pass covers all three batches


def test_unsupervised_run_has_one_logit_and_no_test_error(tmp_path):
    run = train(
        tiny_config(tmp_path, **SMALL, labels=0, techniques={"historical_averaging": 0.1}), progress=False
    )
    record = json.loads((run / "metrics.jsonl").read_text())
    assert "test_errors" not in record and "train_error" not in record
    assert load_checkpoint(run / CHECKPOINT)[0]["D.output.weight_v"].shape[0] == 1
    with pytest.raises(ImprovedGANError, match="unsupervised"):
        evaluate_run(run)


def test_feature_matching_from_a_named_layer(tmp_path):
    run = train(tiny_config(tmp_path, **SMALL, feature_matching_layer="hidden.2"), progress=False)
    assert json.loads((run / "metrics.jsonl").read_text())["loss_generator"] > 0
    with pytest.raises(ImprovedGANError, match="no layer 'hidden.9'"):
        train(
            tiny_config(tmp_path, **SMALL, feature_matching_layer="hidden.9", run_dir=str(tmp_path / "x")),
            progress=False,
        )


def test_technique_switches_from_set_items_and_their_validation():
    config = load_config(
        "mnist-fm",
        set_items=[
            "techniques.minibatch_discrimination=true",
            "techniques.historical_averaging=0.01",
            "techniques.label_smoothing=0.9",
            "techniques.vbn=true",
            "generator_loss=minimax",
            "g_steps=3",
        ],
    )
    D, G = build_models(config)
    assert D.minibatch is not None and G.norm == "vbn" and config.g_steps == 3
    for item, message in [
        ("techniques.label_smoothing=1.5", "label_smoothing"),
        ("techniques.historical_averaging=-1", "historical_averaging"),
        ("techniques.dropout=0.1", "unknown key"),
        ("g_steps=0", "g_steps"),
        ("labels=-10", "multiple of 10"),
    ]:
        with pytest.raises(ImprovedGANError, match=message) as err:
            load_config("mnist-fm", set_items=[item])
        assert "\n" not in str(err.value)


def test_table3_presets_differ_from_our_methods_only_in_their_ablation():
    assert {"mnist-mbd", "mnist-table3-all"} <= set(preset_names())
    base = load_config("mnist-table3-all").model_dump()
    expected = {
        "mnist-table3-vbn+bn": {"techniques.vbn": False},
        "mnist-table3-l+ha": {"labels": 0, "techniques.historical_averaging": 0.001},
        "mnist-table3-ls": {"techniques.label_smoothing": 1.0},
        "mnist-table3-l": {"labels": 0},
        "mnist-table3-mbf": {"techniques.minibatch_discrimination": False},
    }

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    base_flat = flat(base)
    for name, diff in expected.items():
        other = flat(load_config(name).model_dump())
        changed = {k: v for k, v in other.items() if base_flat[k] != v and k != "preset"}
        assert changed == diff, name
    mbd = load_config("mnist-mbd")
    assert mbd.generator_loss == "minimax" and mbd.g_steps == 3 and mbd.techniques.minibatch_discrimination
    assert base["techniques"]["vbn"] and base["techniques"]["label_smoothing"] == 0.9
