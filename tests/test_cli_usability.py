"""The command line as a user meets it: preset listing, options with negative values, help texts,
a reader that leaves early."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from improved_gan.cli import _join_negative_values, build_parser, main
from improved_gan.training.config import PRESET_DIR, load_config, preset_names, preset_summary


def test_every_preset_has_a_one_line_summary():
    for name in preset_names():
        summary = preset_summary(name)
        assert summary and "\n" not in summary, name
        assert (PRESET_DIR / f"{name}.yaml").read_text().startswith(f"# summary: {summary}\n")


def test_presets_lists_data_labels_epochs_and_summary(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = preset_names()
    assert len(out) == 2 * len(names)
    for name, line, summary in zip(names, out[::2], out[1::2]):
        config = load_config(name)
        assert line.split()[0] == name
        assert f"{config.dataset}," in line and line.rstrip().endswith(f"{config.epochs} epochs")
        assert summary.strip() == preset_summary(name)
    assert "93 ± 6.5" in preset_summary("mnist-fm-2016")  # the paper's Table 1 figure beside its recipe


def test_presets_names_prints_bare_names(capsys):
    assert main(["presets", "--names"]) == 0
    assert capsys.readouterr().out.split() == preset_names()


def test_unknown_preset_summary_is_a_clear_error():
    with pytest.raises(Exception, match="unknown preset 'nope'"):
        preset_summary("nope")


@pytest.mark.parametrize("value", ["-1,1", "0,1", "auto"])
def test_value_range_accepts_a_negative_range_as_a_separate_word(value):
    argv = ["score", "x.npy", "--value-range", value]
    assert _join_negative_values(argv) == ["score", "x.npy", f"--value-range={value}"]
    args = build_parser().parse_args(_join_negative_values(argv))
    assert args.value_range == value


def test_value_range_at_the_end_without_a_value_is_left_to_argparse(capsys):
    assert _join_negative_values(["score", "--value-range"]) == ["score", "--value-range"]
    with pytest.raises(SystemExit):
        main(["score", "x.npy", "--value-range"])
    assert "expected one argument" in capsys.readouterr().err


def _actions_without_help(name: str, parser: argparse.ArgumentParser):
    """``(command path, option)`` of every option without help, sub-commands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _actions_without_help(f"{name} {sub_name}", sub)
        elif action.dest != "help" and not action.help:
            yield name, action.option_strings or action.dest


@pytest.mark.parametrize(
    "command", ["train", "evaluate", "reproduce", "predict", "presets", "score", "classifier", "turing"]
)
def test_every_option_of_a_command_has_help(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert list(_actions_without_help(command, sub.choices[command])) == []


def test_a_reader_that_closes_the_pipe_early_gets_no_error():
    code = "from improved_gan.cli import main; raise SystemExit(main(['presets']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head` that is gone before the listing is written: EPIPE on write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "error" not in err and "Traceback" not in err


def test_a_run_outside_a_terminal_logs_plain_lines_plots_and_sends_images(tmp_path, capsys):
    """stderr is not a terminal under pytest: no tqdm redraws, one line per epoch; the run ends
    with its learning-curve PNG, an enlarged sample grid and the grid in TensorBoard."""
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    argv = ["train", "mnist-fm-2016", "--labels", "20", "--epochs", "2", "--run-dir", str(run)]
    for item in ("max_train_examples=300", "max_test_examples=200", "init_examples=100"):
        argv += ["--set", item]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.out + captured.err and "it/s" not in captured.err
    lines = captured.out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["epoch 1/2", "epoch 2/2"]
    assert f"learning curves: {run / 'learning_curves.png'}" in lines
    assert Image.open(run / "learning_curves.png").size[0] > 300
    grid = Image.open(run / "samples" / "epoch_0002.png")
    assert grid.size == (2 * 291, 2 * 291)  # 10 x 10 digits of 28 px, 1 px gaps, doubled
    events = EventAccumulator(str(run / "tb"), size_guidance={"images": 0})
    events.Reload()
    images = events.Images("samples")
    assert [e.step for e in images] == [1, 2] and (images[0].width, images[0].height) == (291, 291)
