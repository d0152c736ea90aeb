"""The figures, CSV and low-entropy penalty table of ``improved-gan analyze minibatch-divergence``."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from improved_gan.analysis.minibatch_report import (
    js_curves,
    low_entropy_penalty_table,
    normalise_curves,
    q_grid,
    write_minibatch_divergence_report,
)
from improved_gan.cli import main
from improved_gan.errors import ImprovedGANError

LOG2 = math.log(2.0)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_curves_have_a_unique_minimum_at_q_equals_p_for_every_n() -> None:
    qs = q_grid(99)  # k / 100, contains 0.2 exactly
    curves = js_curves(0.2, [1, 2, 3, 8], qs)
    i_p = int(np.argmin(np.abs(qs - 0.2)))
    for curve in curves:
        assert int(np.argmin(curve)) == i_p and curve[i_p] == 0.0
        assert np.all(np.diff(curve[: i_p + 1]) < 0)  # strictly decreasing up to q = p
        assert np.all(np.diff(curve[i_p:]) > 0)  # strictly increasing after


def test_tails_flatten_towards_log2_as_n_grows() -> None:
    qs = np.array([0.88, 0.98, 0.999])
    curves = js_curves(0.2, [1, 2, 3, 8], qs)
    gap_to_log2 = LOG2 - curves[:, -1]
    assert np.all(np.diff(gap_to_log2) < 0) and np.all(gap_to_log2 > 0)
    rise = curves[:, 1] - curves[:, 0]
    assert rise[3] < 0.25 * rise[0]  # N = 8 is nearly flat where N = 1 still climbs


def test_normalised_curves_have_maximum_one() -> None:
    curves = js_curves(0.2, [1, 8], q_grid(19))
    scaled = normalise_curves(curves)
    np.testing.assert_allclose(scaled.max(axis=1), 1.0)
    np.testing.assert_allclose(scaled * curves.max(axis=1, keepdims=True), curves)


def test_point_mass_penalty_matches_closed_form() -> None:
    # G^N is a point mass on one sequence that P^N gives probability r = 10^-N, so
    # JS = ½ [r log(2r/(1+r)) + (1-r) log 2] + ½ log(2/(1+r)).
    rows = [r for r in low_entropy_penalty_table() if r.generator == "point mass"]
    assert [r.n for r in rows] == [1, 2, 4, 8]
    for row in rows:
        r = 10.0**-row.n
        expected = 0.5 * (r * math.log(2 * r / (1 + r)) + (1 - r) * LOG2) + 0.5 * math.log(2 / (1 + r))
        assert row.js == pytest.approx(expected, rel=1e-12)
        assert row.js_per_sample == pytest.approx(expected / row.n, rel=1e-12)


def test_penalty_table_ordering_and_saturation() -> None:
    rows = low_entropy_penalty_table()
    by = {(r.generator, r.n): r for r in rows}
    for n in (1, 2, 4, 8):
        point, five, nine = by["point mass", n], by["uniform on 5", n], by["uniform on 9", n]
        assert point.js > five.js > nine.js  # lower entropy, larger penalty at every N
        assert nine.relative_to_reference == pytest.approx(1.0)
        assert point.relative_to_reference == pytest.approx(point.js / nine.js)
    for gen in ("point mass", "uniform on 5", "uniform on 9"):
        fractions = [by[gen, n].fraction_of_linear for n in (1, 2, 4, 8)]
        assert fractions[0] == pytest.approx(1.0) and all(np.diff(fractions) < 0)


def test_report_writes_figures_csv_and_table(tmp_path: Path) -> None:
    report = write_minibatch_divergence_report(
        tmp_path / "out", p=0.2, ns=[1, 3], q_points=9, penalty_ns=[1, 2]
    )
    for png in (report.raw_figure, report.normalised_figure):
        assert png.read_bytes()[:8] == PNG_MAGIC
    with report.curves_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 9
    for row in rows:
        n, q = int(row["n"]), float(row["q"])
        assert float(row["kl"]) == pytest.approx(
            n * (0.8 * math.log(0.8 / (1 - q)) + 0.2 * math.log(0.2 / q)), rel=1e-9
        )
        assert float(row["js_per_sample"]) == pytest.approx(float(row["js"]) / n, rel=1e-9)
        assert 0.0 <= float(row["js_normalised"]) <= 1.0
    assert (
        "point mass" in report.penalty_table
        and report.penalty_markdown.read_text().count("| point mass") == 2
    )
    with report.penalty_csv.open() as fh:
        assert len(list(csv.DictReader(fh))) == 3 * 2


def test_report_rejects_bad_p_and_batch_sizes(tmp_path: Path) -> None:
    with pytest.raises(ImprovedGANError, match="between 0 and 1"):
        write_minibatch_divergence_report(tmp_path, p=1.2)
    with pytest.raises(ImprovedGANError, match="positive integers"):
        write_minibatch_divergence_report(tmp_path, ns=[0, 2])


def test_cli_analyze_minibatch_divergence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "analyze",
            "minibatch-divergence",
            "--p",
            "0.3",
            "--n",
            "1",
            "2",
            "--q-points",
            "9",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert (tmp_path / "minibatch_js_raw.png").is_file() and (
        tmp_path / "minibatch_js_normalised.png"
    ).is_file()
    assert "uniform on 9" in capsys.readouterr().out
    assert main(["analyze", "minibatch-divergence", "--p", "1.5", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("improved-gan: error:") and err.count("\n") == 1
