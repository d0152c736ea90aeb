"""``--resume`` continues a run under its own config.yaml, and default run directories of
different recipes never clash (issue 17, the first hour)."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import TINY_SETS, cli_error

from improved_gan.cli import main
from improved_gan.training import RunDir, load_config

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--labels", "20", "--quiet", *TINY_SETS, "--set", "sample_grid=false"]


def _epochs(run) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def run(tmp_path):
    """A one-epoch tiny run of preset mnist-fm trained under ``--set lr=0.002``."""
    path = tmp_path / "run"
    argv = ["train", "mnist-fm", *TINY, "--epochs", "1", "--set", "lr=0.002", "--run-dir", str(path)]
    assert main(argv) == 0
    return path


@pytest.mark.parametrize("preset", [["mnist-fm"], []], ids=["with-preset", "without-preset"])
def test_resume_reads_the_runs_own_config_so_nothing_is_retyped(run, preset):
    assert main(["train", *preset, "--run-dir", str(run), "--resume", "--epochs", "2", "--quiet"]) == 0
    assert _epochs(run) == [1, 2]
    config = RunDir(run).read_config()
    assert (config.lr, config.epochs, config.labels, config.max_train_examples) == (0.002, 2, 20, 300)


def test_resume_still_refuses_a_setting_that_changes_what_is_computed(run, capsys):
    before = (run / "config.yaml").read_bytes()
    message = cli_error(capsys, ["train", "mnist-fm", "--run-dir", str(run), "--resume", "--set", "lr=0.01"])
    assert "differs in lr" in message and str(run) in message
    assert (run / "config.yaml").read_bytes() == before and _epochs(run) == [1]


def test_resume_under_another_preset_names_the_runs_preset(run, capsys):
    message = cli_error(capsys, ["train", "mnist-fm-2016", "--run-dir", str(run), "--resume"])
    assert "preset mnist-fm, not mnist-fm-2016" in message and f"--resume --run-dir {run}" in message


def test_train_without_a_preset_needs_resume_and_run_dir(tmp_path, capsys):
    message = cli_error(capsys, ["train", "--resume"])
    assert "name a preset" in message and "--resume --run-dir" in message
    message = cli_error(capsys, ["train", "--resume", "--run-dir", str(tmp_path / "nothing")])
    assert "is not a run directory" in message


def test_resume_where_there_is_no_run_says_it_starts_one_and_names_runs_with_other_settings(tmp_path, capsys):
    root = tmp_path / "runs"
    sets = [TINY[i + 1] for i, word in enumerate(TINY) if word == "--set"] + [f"runs_root={root}"]
    other = load_config("mnist-fm", {"labels": 20}, [*sets, "lr=0.002"]).default_run_dir()
    other.mkdir(parents=True)
    (other / "config.yaml").write_text("{}\n")
    mine = load_config("mnist-fm", {"labels": 20}, sets).default_run_dir()
    capsys.readouterr()
    assert main(["train", "mnist-fm", *TINY, "--epochs", "1", "--set", f"runs_root={root}", "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"warning: nothing to resume in {mine}; starting a new run there" in err
    assert other.name in err and "--run-dir" in err
    assert mine != other and _epochs(mine) == [1]


def test_default_run_dirs_of_different_recipes_differ_and_runtime_settings_do_not_count():
    plain = load_config("mnist-fm", {"labels": 20})
    assert plain.default_run_dir().name == "mnist-fm-mnist-l20-s1" and plain.preset_changes() == {}
    runtime = load_config(
        "mnist-fm", {"labels": 20, "epochs": 5, "threads": 1}, ["amp=bf16", "tensorboard=false"]
    )
    assert runtime.default_run_dir() == plain.default_run_dir()
    lr = load_config("mnist-fm", {"labels": 20}, ["lr=0.002"])
    again = load_config("mnist-fm", {"labels": 20, "epochs": 3}, ["lr=0.002"])
    other = load_config("mnist-fm", {"labels": 20}, ["lr=0.004"])
    ema = load_config("mnist-fm", {"labels": 20}, ["ema.decay=0.999"])
    assert lr.preset_changes() == {"lr": 0.002} and set(ema.preset_changes()) == {"ema"}
    names = {c.default_run_dir().name for c in (plain, lr, other, ema)}
    assert len(names) == 4 and all(n.startswith("mnist-fm-mnist-l20-s1") for n in names)
    assert again.default_run_dir() == lr.default_run_dir()
    assert (
        load_config("mnist-fm", {"labels": 20, "seed_data": 7}).default_run_dir() != plain.default_run_dir()
    )
    own = plain.model_copy(update={"num_classes": 3, "data_conversion": "grey, resized to 28x28"})
    assert own.preset_changes() == {}  # what follows from a user's data names no other recipe


def test_a_config_that_names_no_preset_has_no_changes_to_hash(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"preset": "mine", "labels": 20, "lr": 0.002}))
    config = load_config(str(path))
    assert config.preset_changes() is None and config.default_run_dir().name == "mine-mnist-l20-s1"


@pytest.mark.parametrize("how", ["set", "yaml"])
def test_amp_off_survives_yaml_reading_off_as_false(tmp_path, how):
    if how == "set":
        config = load_config("mnist-fm", set_items=["amp=off"])
    else:
        path = tmp_path / "c.yaml"
        path.write_text("base: mnist-fm\namp: off\n")
        config = load_config(str(path))
    assert config.amp == "off"
