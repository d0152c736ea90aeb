"""The study report: accuracy per model, rater and feedback condition, top-% filter, files and CLI."""

from __future__ import annotations

import csv
import io
import math

import pytest
from PIL import Image
from turing_support import LiveServer, Rater, db_rows, make_study

from improved_gan.cli import main
from improved_gan.evaluation import summarize, wilson_interval, write_report
from improved_gan.evaluation.report import render_markdown, write_image_csv_to
from improved_gan.evaluation.report_stats import Balanced, Proportion


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    assert wilson_interval(0, 10)[0] == 0 and round(wilson_interval(0, 10)[1], 4) == 0.2775
    low, high = wilson_interval(1048, 2000)  # the paper's MNIST study: 52.4 % of 2,000 votes
    assert round(100 * low, 1) == 50.2 and round(100 * high, 1) == 54.6
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_balanced_accuracy_is_the_mean_of_real_and_fake_accuracy():
    balanced = Balanced(Proportion(30, 40), Proportion(5, 10))
    assert balanced.rate == pytest.approx(0.625)
    low, high = balanced.interval
    assert low < 0.625 < high and high - low < 0.5


def row(session, position, truth, answer, model=None, feedback=0, score=None, n_total=4, name="", image=None):
    return {
        "id": 0,
        "image_id": 10 * session + position if image is None else image,
        "source_index": position,
        "session_id": session,
        "rater_name": name,
        "worker_id": "",
        "position": position,
        "truth": truth,
        "answer": answer,
        "correct": int(truth == answer),
        "model": model or "real",
        "feedback": feedback,
        "score": score,
        "latency_ms": 100.0 * (position + 1),
        "n_total": n_total,
    }


def test_summary_counts_per_model_rater_condition_and_top_percent():
    rows = [  # session 1, no feedback: 1/2 real right, 'a' 1/1, 'b' 0/1
        row(1, 0, "real", "real", name="Ann"),
        row(1, 1, "real", "fake", name="Ann"),
        row(1, 2, "fake", "fake", "a", score=0.99, name="Ann"),
        row(1, 3, "fake", "real", "b", name="Ann"),
        # session 2, feedback: all right
        row(2, 0, "real", "real", feedback=1),
        row(2, 1, "fake", "fake", "a", 1, score=0.1),
        row(2, 2, "real", "real", feedback=1),
        row(2, 3, "fake", "fake", "b", 1, image=13),  # the image session 1 called real
    ]
    report = summarize(rows, scores={"a": [0.1 * i for i in range(1, 11)]}, top_percent=10)
    assert (report.answers, report.raters) == (8, 2)
    assert (report.overall.k, report.overall.n) == (6, 8) and (report.real.k, report.real.n) == (3, 4)
    a_all = next(m for m in report.models if m.model == "a" and m.condition == "all")
    assert (a_all.fake.k, a_all.fake.n) == (2, 2) and a_all.balanced.rate == pytest.approx((0.75 + 1) / 2)
    b_nofb = next(m for m in report.models if m.model == "b" and m.condition == "no feedback")
    assert (b_nofb.fake.k, b_nofb.fake.n) == (0, 1) and b_nofb.balanced.rate == pytest.approx(0.25)
    conditions = {c.condition: c for c in report.conditions}
    assert (conditions["feedback"].accuracy.k, conditions["feedback"].accuracy.n) == (4, 4)
    assert (conditions["no feedback"].first_half.k, conditions["no feedback"].first_half.n) == (1, 2)
    assert (conditions["no feedback"].second_half.k, conditions["no feedback"].second_half.n) == (1, 2)
    assert conditions["no feedback"].median_latency_ms == 250
    ann = report.raters_table[0]
    assert (ann.rater, ann.accuracy.k, ann.accuracy.n, ann.condition) == ("Ann", 2, 4, "no feedback")
    assert report.raters_table[1].rater == "session 2"
    (top,) = report.top  # only 'a' has scores; its top 10 % is the image scored 0.99 (>= 0.91)
    assert top.model == "a" and top.images == 1 and (top.fake.k, top.fake.n) == (1, 1)
    assert math.isclose(top.threshold, 0.91)
    images = {i.image_id: i for i in report.images}
    assert (images[13].model, images[13].called_real.k, images[13].called_real.n) == ("b", 1, 2)
    assert [i.model for i in report.images][:4] == ["real"] * 4 and len(report.images) == 7


def test_report_matches_the_answers_given(tmp_path, capsys):
    db_path = make_study(tmp_path, n=20, scores=True)
    with LiveServer(db_path, per_rater=10, feedback="random") as server:
        for i in range(4):
            rater = Rater(server.url, name=f"rater{i}")
            rater.start()
            rater.page()
            for k in range(10):
                assert rater.rate("real" if (k + i) % 3 else "fake").status_code == 200
            rater.close()
    truth = db_rows(db_path, "SELECT truth, answer FROM answers")
    right = sum(t == a for t, a in truth)
    assert main(["turing", "report", str(db_path), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert f"Overall accuracy: {100 * right / 40:.1f} %" in printed and "rater3" in printed
    files = write_report(db_path, tmp_path / "out", force=True)  # over the CLI's report
    assert files.report.overall.k == right and files.report.overall.n == 40
    assert (tmp_path / "out" / "report.md").read_text() == files.text
    assert Image.open(tmp_path / "out" / "report.png").size[0] > 300
    with open(tmp_path / "out" / "answers.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 40 and sum(int(r["correct"]) for r in table) == right
    assert {r["rater_name"] for r in table} == {f"rater{i}" for i in range(4)}
    assert all(r["answered_at"].endswith("+00:00") for r in table)
    assert "Top 1 %" in files.text  # the models have scores
    with open(files.images_csv) as f:
        images = list(csv.DictReader(f))
    shown = db_rows(db_path, "SELECT image_id, SUM(answer = 'real'), COUNT(*) FROM answers GROUP BY image_id")
    assert {(int(r["image_id"]), int(r["answered_real"]), int(r["answers"])) for r in images} == set(shown)
    assert "## Per image" in files.text and "## Per image" not in printed


def test_the_per_image_table_escapes_model_names(tmp_path):
    rows = [row(1, 0, "fake", "real", "=HYPERLINK(x)|*b*"), row(1, 1, "real", "real")]
    report = summarize(rows)
    line = next(x for x in render_markdown(report).splitlines() if x.startswith("| 10 |"))
    assert line == r"| 10 | =HYPERLINK\(x\)\|\*b\* | 0 | 1 | 1 (100 %) |"  # one cell, no markup
    buffer = io.StringIO()
    write_image_csv_to(report.images, buffer)
    assert buffer.getvalue().splitlines()[2].startswith("10,'=HYPERLINK(x)|*b*,")


def test_report_of_a_missing_database_is_a_one_line_error(tmp_path, capsys):
    assert main(["turing", "report", str(tmp_path / "nothing.sqlite")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such study database" in err
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 10)
    assert main(["turing", "report", str(tmp_path / "junk.sqlite")]) == 1
    assert "not a study database" in capsys.readouterr().err


def test_unfinished_sessions_are_left_out_unless_asked(tmp_path, capsys):
    db_path = make_study(tmp_path, n=10)
    with LiveServer(db_path, per_rater=4) as server:
        for name, answers in [("finisher", 4), ("quitter", 2)]:
            rater = Rater(server.url, name=name)
            rater.start()
            rater.page()
            for _ in range(answers):
                assert rater.rate().status_code == 200
            rater.close()
    files = write_report(db_path, tmp_path / "out")
    assert (files.report.answers, files.report.raters) == (4, 1)
    assert "Left out: 2 answers of 1 unfinished session" in files.text and "quitter" not in files.text
    with open(files.csv) as f:
        assert {r["rater_name"] for r in csv.DictReader(f)} == {"finisher"}
    argv = ["turing", "report", str(db_path), "--out", str(tmp_path / "out"), "--force"]
    assert main([*argv, "--include-unfinished"]) == 0
    printed = capsys.readouterr().out
    assert "6 answers from 2 raters (1 session completed)" in printed and "Counted: 2 answers" in printed
