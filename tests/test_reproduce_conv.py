"""`improved-gan reproduce table2|svhn|table3` on tiny synthetic data, and the paper's numbers."""

import json
import re

import pytest

from improved_gan import reproduce as rep
from improved_gan.cli import main

TINY = [
    "dataset=synthetic",
    "max_train_examples=1000",
    "max_test_examples=50",
    "batch_size=100",
    "init_examples=100",
    "tensorboard=false",
    "sample_grid=false",
    "conv.d_widths=[8, 16]",
    "conv.g_widths=[16, 8, 8]",
    "techniques.minibatch_kernels=4",
    "techniques.minibatch_kernel_dim=3",
    "device=cpu",
]


def test_paper_numbers_match_results_md():
    assert rep.PAPER_TABLE2[1000][:2] == (21.83, 2.01) and rep.PAPER_TABLE2[8000][:2] == (17.72, 1.82)
    assert rep.PAPER_TABLE2[4000] == (18.63, 2.32, 15.59, 0.47)
    assert rep.PAPER_SVHN[500][:2] == (18.44, 4.8) and rep.PAPER_SVHN[1000] == (8.11, 1.3, 5.88, 1.0)
    assert rep.PAPER_SVHN[2000][:2] == (6.16, 0.58)
    assert rep.PAPER_TABLE3["table3-all"] == (8.09, 0.07) and rep.PAPER_TABLE3["table3-mbf"][0] == 3.87


def test_reproduce_table2_reports_percent_errors_beside_the_paper(tmp_path, capsys):
    args = ["reproduce", "table2", "--labels", "20", "1000", "--seeds", "1", "2", "--epochs", "1", "--quiet"]
    args += ["--runs-root", str(tmp_path / "t2")]
    for item in [*TINY, "max_train_examples=200", "batch_size=50", "init_examples=50"]:
        args += ["--set", item]
    assert main(args) == 1  # 1000 labels do not fit in 200 training examples: one clear error
    assert "labels (1000) exceeds the 200 training examples" in capsys.readouterr().err
    args.remove("1000")
    assert main(args) == 0
    md = (tmp_path / "t2" / "table2.md").read_text()
    assert "CIFAR-10: test error (%) (preset cifar10-fm, 1 epoch;" in md
    data = json.loads((tmp_path / "t2" / "table2.json").read_text())
    row = data["rows"]["20"]
    assert len(row["errors"]) == 2 and row["n_test"] == 50
    mean = 100 * sum(row["errors"]) / 2 / 50
    assert f"| improved-gan (mean ± std over runs) | {mean:.2f} ± " in md
    capsys.readouterr()
    assert main(args + ["--collect-only"]) == 0  # finished runs are collected, not retrained
    assert md in capsys.readouterr().out


def test_table2_format_puts_the_paper_beside_percent_errors():
    results = {
        "table": "table2",
        "preset": "cifar10-fm",
        "epochs": 1200,
        "rows": {
            1000: {"errors": [2000, 2200], "ensemble": 1900, "n_test": 10000},
            8000: {"errors": [], "ensemble": None, "n_test": None},
        },
    }
    md = rep.format_ssl_table(results)
    assert "| Model | 1000 | 8000 |" in md
    assert "| Paper: our model | 21.83 ± 2.01 | 17.72 ± 1.82 |" in md
    assert "| Paper: ensemble of 10 | 19.22 ± 0.54 | 14.87 ± 0.89 |" in md
    assert "| improved-gan (mean ± std over runs) | 21.00 ± 1.41 | – |" in md
    assert "| improved-gan ensemble (softmax average) | 19.00 | – |" in md


def test_svhn_table_format_has_the_paper_columns():
    results = {
        "table": "svhn",
        "preset": "svhn-fm",
        "epochs": 900,
        "rows": {500: {"errors": [2600, 2000], "ensemble": None, "n_test": 26032}},
    }
    md = rep.format_ssl_table(results)
    assert "| Paper: our model | 18.44 ± 4.8 |" in md and "| Paper: ensemble of 10 | – |" in md
    assert "| improved-gan (mean ± std over runs) | 8.84 ± 1.63 |" in md


def test_reproduce_table3_trains_each_preset_and_scores_its_samples(tmp_path, monkeypatch):
    calls = []

    def fake_score(source, metrics, extractor, device, inception_weights, progress):
        calls.append((source.description, tuple(metrics), extractor, source.count))
        return {"inception_score_mean": 2.5 + len(calls), "inception_score_std": 0.1}

    monkeypatch.setattr("improved_gan.reproduce.score", fake_score)
    items = [*TINY, "max_train_examples=200", "epochs=1"]
    md, results = rep.reproduce_table3(
        presets=["table3-all", "table3-l"],
        labels=100,  # the labelled rows only; table3-l stays unsupervised
        runs_root=tmp_path / "t3",
        samples=30,
        set_items=items,
        progress=False,
    )
    assert [c[1:] for c in calls] == [(("is",), "inception", 30)] * 2
    # the runs' default directories: preset, data, labels, seed, and a hash of the tiny settings
    assert re.search(r"/table3-all-synthetic-l100-s1-[0-9a-f]{6}$", calls[0][0]), calls[0][0]
    assert re.search(r"/table3-l-synthetic-l0-s1-[0-9a-f]{6}$", calls[1][0]), calls[1][0]
    assert "| table3-all | 8.09 ± 0.07 | 3.50 ± 0.00 | 1 |" in md and "| table3-l | 4.36 ± 0.04 |" in md
    assert "| Real data | 11.24 ± 0.12 |" in md
    assert (tmp_path / "t3" / "table3.json").exists()
    with pytest.raises(Exception, match="no finished runs"):
        rep.reproduce_table3(presets=["table3-ls"], runs_root=tmp_path / "t3", train_missing=False)


def test_colour_runs_are_scored_with_inception_by_default(tmp_path):
    from improved_gan.cli.score import resolve_extractor
    from improved_gan.training import load_config, sample_from_run, train

    items = [*TINY, "max_train_examples=100", "batch_size=50", "init_examples=50", "epochs=1"]
    run = train(load_config("svhn-fm", {"labels": 0, "run_dir": str(tmp_path / "r")}, items), progress=False)
    assert resolve_extractor("auto", str(run)) == "inception"
    images = sample_from_run(run, 7)
    assert images.shape == (7, 32, 32, 3) and images.dtype.name == "uint8"
