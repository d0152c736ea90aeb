import json

import numpy as np
import pytest
import torch
from conftest import tiny_config

from improved_gan.cli import main
from improved_gan.errors import ImprovedGANError
from improved_gan.training import evaluate_run, load_config, sample_from_run, train
from improved_gan.training.config import parse_set_overrides, validate_config
from improved_gan.training.run_dir import CHECKPOINT
from improved_gan.utils.checkpoint import load_checkpoint, save_checkpoint


def _final_tensors(run_dir):
    return load_checkpoint(run_dir / CHECKPOINT)[0]


def test_training_writes_a_complete_run_directory(tmp_path):
    run = train(tiny_config(tmp_path, epochs=2), progress=False)
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    for key in (
        "loss_supervised",
        "loss_unsupervised",
        "loss_generator",
        "train_error",
        "test_error",
        "seconds",
    ):
        assert all(np.isfinite(r[key]) for r in lines)
    assert (run / "samples" / "epoch_0002.png").is_file()
    assert validate_config(__import__("yaml").safe_load((run / "config.yaml").read_text())).epochs == 2
    assert not list(run.rglob("*.tmp"))
    result = evaluate_run(run)
    assert result["epoch"] == 2 and result["test_errors"] == lines[-1]["test_errors"]
    assert evaluate_run(run, use_ema=False)["test_errors"] == lines[-1]["test_errors_raw"]


def test_resume_equals_an_uninterrupted_run(tmp_path):
    full = train(tiny_config(tmp_path, epochs=2, run_dir=str(tmp_path / "full")), progress=False)
    part = train(tiny_config(tmp_path, epochs=1, run_dir=str(tmp_path / "part")), progress=False)
    part = train(tiny_config(tmp_path, epochs=2, run_dir=str(tmp_path / "part")), resume=True, progress=False)
    a, b = _final_tensors(full), _final_tensors(part)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key

    def strip(p):
        return [
            {k: v for k, v in json.loads(s).items() if "second" not in k} for s in p.read_text().splitlines()
        ]

    assert strip(full / "metrics.jsonl") == strip(part / "metrics.jsonl")


def test_same_seed_same_result_and_other_seed_differs(tmp_path):
    a = _final_tensors(train(tiny_config(tmp_path, run_dir=str(tmp_path / "a")), progress=False))
    b = _final_tensors(train(tiny_config(tmp_path, run_dir=str(tmp_path / "b")), progress=False))
    c = _final_tensors(train(tiny_config(tmp_path, seed=2, run_dir=str(tmp_path / "c")), progress=False))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["D.output.weight_v"], c["D.output.weight_v"])


def test_existing_run_needs_resume_and_resume_needs_same_config(tmp_path):
    train(tiny_config(tmp_path), progress=False)
    with pytest.raises(ImprovedGANError, match="pass --resume"):
        train(tiny_config(tmp_path), progress=False)
    with pytest.raises(ImprovedGANError, match="differs in lr"):
        train(tiny_config(tmp_path, lr=0.1, epochs=2), resume=True, progress=False)
    run = train(tiny_config(tmp_path, epochs=2, threads=1), resume=True, progress=False)  # threads may change
    assert load_checkpoint(run / CHECKPOINT)[1]["epoch"] == "2"
    # speed options may change too (e.g. a CPU run resumed on a GPU with channels-last weights)
    run = train(tiny_config(tmp_path, epochs=3, channels_last=True), resume=True, progress=False)
    assert load_checkpoint(run / CHECKPOINT)[1]["epoch"] == "3"


def test_config_validation_errors_are_one_line():
    with pytest.raises(ImprovedGANError, match="unknown key") as err:
        load_config("mnist-fm", set_items=["learning_rate=0.1"])
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("invalid preset mnist-fm with the flags and --set values given: ")
    with pytest.raises(ImprovedGANError, match="multiple of 10"):
        load_config("mnist-fm", {"labels": 25})
    with pytest.raises(ImprovedGANError, match="ema.decay"):
        load_config("mnist-fm", set_items=["ema.decay=1.5"])
    with pytest.raises(ImprovedGANError, match="expected key=value"):
        parse_set_overrides(["epochs"])
    with pytest.raises(ImprovedGANError, match="unknown preset"):
        load_config("mnist-fancy")


def test_set_overrides_nest_and_parse_yaml_values(tmp_path):
    config = load_config("mnist-fm", {"epochs": 3}, ["ema.bias_correction=false", "lr=1e-3"])
    assert config.epochs == 3 and config.ema.bias_correction is False and config.lr == 1e-3
    path = tmp_path / "c.yaml"
    path.write_text("preset: mine\nlabels: 50\n")
    assert load_config(str(path)).labels == 50


def test_lr_schedules_of_the_two_presets():
    head = load_config("mnist-fm")
    assert head.lr_at(0) == head.lr_at(299) == 0.003
    old = load_config("mnist-fm-2016")
    assert old.lr_at(0) == old.lr_at(200) == 0.001
    assert old.lr_at(250) == pytest.approx(0.0005) and old.lr_at(299) == pytest.approx(1e-5)
    assert not old.ema.enabled


def test_checkpoints_are_atomic_and_corruption_is_a_clear_error(tmp_path):
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, {"a": torch.arange(3)}, {"epoch": "4"})
    tensors, meta = load_checkpoint(path)
    assert torch.equal(tensors["a"], torch.arange(3)) and meta["epoch"] == "4"
    assert [p.name for p in tmp_path.iterdir()] == ["ck.safetensors"]
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ImprovedGANError, match="unreadable"):
        load_checkpoint(path)
    with pytest.raises(ImprovedGANError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_sample_from_run_gives_uint8_images(tmp_path):
    run = train(tiny_config(tmp_path), progress=False)
    images = sample_from_run(run, 130, seed=1)
    assert images.shape == (130, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, sample_from_run(run, 130, seed=1))


def test_cli_train_evaluate_and_errors(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(tiny_config(tmp_path)))
    assert main(["train", str(cfg), "--quiet"]) == 0
    assert "test errors" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "run"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epoch"] == 1 and 0 <= out["test_errors"] <= 200
    assert main(["train", "mnist-fm", "--labels", "7"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("improved-gan: error:") and err.count("\n") == 1
    assert main(["evaluate", str(tmp_path / "nothing")]) == 1


def test_reproduce_table1_trains_collects_and_writes_markdown(tmp_path, capsys):
    args = ["reproduce", "table1", "--labels", "20", "--seeds", "1", "2", "--epochs", "1", "--quiet"]
    args += ["--runs-root", str(tmp_path / "t1")]
    for item in ("max_train_examples=300", "max_test_examples=200", "init_examples=100", "tensorboard=false"):
        args += ["--set", item]
    assert main(args) == 0
    md = (tmp_path / "t1" / "table1.md").read_text()
    assert "1677 ± 452" in md and "| runs | 2 |" in md
    # the capped test set is named, with a warning; one epoch is "1 epoch"
    assert "test errors out of 200 (preset mnist-fm-2016, 1 epoch;" in md
    assert "The test set was capped" in md and "out of 10,000" in md
    data = json.loads((tmp_path / "t1" / "table1.json").read_text())
    errors = data["rows"]["20"]["errors"]
    assert len(errors) == 2 and all(0 <= e <= 200 for e in errors)
    # the two seeds trained in one process as one batched model, each in its own run directory
    runs = sorted(p.parent for p in (tmp_path / "t1").glob("*/metrics.jsonl"))
    assert len(runs) == 2
    assert [json.loads(r.joinpath("metrics.jsonl").read_text())["batched_runs"] for r in runs] == [2, 2]
    assert main(args + ["--collect-only"]) == 0  # finished runs are collected, not retrained
    apart = [a if a != str(tmp_path / "t1") else str(tmp_path / "t2") for a in args]
    assert main(apart + ["--one-at-a-time"]) == 0
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "t2").glob("*/metrics.jsonl"))]
    assert len(records) == 2 and not any("batched_runs" in r for r in records)
