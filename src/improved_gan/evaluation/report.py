"""The files of a visual Turing study's report: Markdown, a bar chart and the answers as CSV
(the numbers themselves are :mod:`~improved_gan.evaluation.report_stats`)."""

from __future__ import annotations

import csv
import html
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import numpy as np

from improved_gan.errors import ImprovedGANError
from improved_gan.evaluation.report_stats import CONDITIONS as CONDITIONS
from improved_gan.evaluation.report_stats import Z95 as Z95
from improved_gan.evaluation.report_stats import Balanced as Balanced
from improved_gan.evaluation.report_stats import ConditionResult as ConditionResult
from improved_gan.evaluation.report_stats import ImageResult as ImageResult
from improved_gan.evaluation.report_stats import ModelResult as ModelResult
from improved_gan.evaluation.report_stats import Proportion as Proportion
from improved_gan.evaluation.report_stats import RaterResult as RaterResult
from improved_gan.evaluation.report_stats import (
    StudyReport,
    completed_only,
    summarize,
)
from improved_gan.evaluation.report_stats import TopResult as TopResult
from improved_gan.evaluation.report_stats import Unfinished as Unfinished
from improved_gan.evaluation.report_stats import count as count
from improved_gan.evaluation.report_stats import report_from_db as report_from_db
from improved_gan.evaluation.report_stats import wilson_interval as wilson_interval
from improved_gan.evaluation.study_db import StudyDB
from improved_gan.evaluation.trial_plan import DRAWS
from improved_gan.utils.atomic import write_atomically

CSV_COLUMNS = (
    "answer_id",
    "session_id",
    "rater_name",
    "worker_id",
    "feedback",
    "position",
    "model",
    "image_id",
    "source_index",
    "score",
    "truth",
    "answer",
    "correct",
    "latency_ms",
    "client_latency_ms",
    "answered_at",
)
IMAGE_CSV_COLUMNS = ("image_id", "model", "source_index", "answers", "answered_real", "share_real")


def render_markdown(report: StudyReport, title: str = "Visual Turing test", per_image: bool = True) -> str:
    """The report as Markdown tables (the long per-image one unless not ``per_image``)."""
    out = [f"# {md_escape(title)}", ""]
    out.append(
        f"{_n(report.answers, 'answer')} from {_n(report.raters, 'rater')} "
        f"({_n(report.sessions_completed, 'session')} completed). Accuracy is the fraction of votes that told real from generated; 50 % is chance. "
        "Intervals are 95 % (Wilson; balanced accuracy: normal with Agresti-Caffo variances)."
        + _unfinished_text(report.unfinished)
    )
    out += [
        "",
        f"- Overall accuracy: {report.overall.text()}",
        f"- Real images called real: {report.real.text()}",
    ]
    out += [f"- Trial draw, {c.condition}: {_draw_text(c.draw)}" for c in report.conditions]
    out += [
        "",
        "## Per model",
        "",
        "| model | condition | fakes called generated | accuracy vs real (balanced) | human error |",
        "|---|---|---|---|---|",
    ]
    for m in report.models:
        err = "–" if math.isnan(m.balanced.rate) else f"{100 * (1 - m.balanced.rate):.1f} %"
        out.append(f"| {_cell(m.model)} | {m.condition} | {m.fake.text()} | {m.balanced.text()} | {err} |")
    out += [
        "",
        "## Feedback vs no feedback",
        "",
        "| condition | trial draw | raters | accuracy | balanced | first half | second half | median latency |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in report.conditions:
        out.append(
            f"| {c.condition} | {c.draw} | {c.raters} | {c.accuracy.text()} | {c.balanced.text()} | "
            f"{c.first_half.text()} | {c.second_half.text()} | {c.median_latency_ms:.0f} ms |"
        )
    if report.top:
        out += [
            "",
            f"## Top {report.top_percent:g} % of each model's images by score",
            "",
            "| model | score threshold | images | fakes called generated | accuracy vs real (balanced) |",
            "|---|---|---|---|---|",
        ]
        for t in report.top:
            out.append(
                f"| {_cell(t.model)} | {t.threshold:.4g} | {t.images} | {t.fake.text()} | {t.balanced.text()} |"
            )
    out += [
        "",
        "## Per rater",
        "",
        "| session | rater | worker id | condition | accuracy | real | fake | median latency |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report.raters_table:
        out.append(
            f"| {r.session_id} | {_cell(r.rater)} | {_cell(r.worker_id)} | {r.condition} | "
            f"{r.accuracy.text()} | {r.real.text()} | {r.fake.text()} | {r.median_latency_ms:.0f} ms |"
        )
    if per_image:
        out += _image_table(report.images)
    return "\n".join(out) + "\n"


def _image_table(images: Sequence[ImageResult]) -> list[str]:
    """The per-image section: how often each answered image was called real."""
    out = [
        "",
        "## Per image",
        "",
        'Each answered image (model "real": a real one) and the share of its answers that said real.',
        "",
        "| image | model | index in source | answers | answered real |",
        "|---|---|---|---|---|",
    ]
    for i in images:
        share = f"{i.called_real.k} ({100 * i.called_real.rate:.0f} %)"
        out.append(f"| {i.image_id} | {_cell(i.model)} | {i.source_index} | {i.called_real.n} | {share} |")
    return out


def _unfinished_text(unfinished: Unfinished) -> str:
    if not unfinished.sessions:
        return ""
    what = f"{_n(unfinished.answers, 'answer')} of {_n(unfinished.sessions, 'unfinished session')}"
    if unfinished.included:
        return f" Counted: {what}."
    return f" Left out: {what} (`turing report --include-unfinished` counts them)."


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _draw_text(draw: str) -> str:
    return " and ".join(DRAWS.get(d, d) for d in draw.split("+"))


# Markdown's inline punctuation; a backslash makes each literal (CommonMark escapes).
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md_escape(text: str) -> str:
    """User-given text (names, worker ids, file names) as literal Markdown: inline markup
    backslash-escaped, then HTML's ``& < >`` as entities (no raw tag survives), one line."""
    text = " ".join(str(text).split())
    return html.escape(_MARKDOWN.sub(r"\\\1", text), quote=False)


def _cell(text: str) -> str:
    return md_escape(text) or "–"


def csv_safe(value: object) -> object:
    """A CSV cell that a spreadsheet will not run: text starting with ``= + - @`` TAB or CR gets a
    leading ``'`` (the OWASP rule against formula injection); numbers are left as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def plot_report(report: StudyReport, path: str | Path) -> Path:
    """Bar chart: accuracy against each model (balanced), per feedback condition, with 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({m.model for m in report.models})
    conditions = sorted({m.condition for m in report.models}, key=lambda c: (c != "all", c)) or ["all"]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(models) + 2), 3.6), dpi=120)
    width = 0.8 / len(conditions)
    for j, cond in enumerate(conditions):
        values, errs = [], [[], []]
        for model in models:
            m = next((m for m in report.models if m.model == model and m.condition == cond), None)
            rate = m.balanced.rate if m else float("nan")
            low, high = m.balanced.interval if m else (rate, rate)
            values.append(100 * rate)
            errs[0].append(100 * (rate - low) if not math.isnan(rate) else 0)
            errs[1].append(100 * (high - rate) if not math.isnan(rate) else 0)
        xs = np.arange(len(models)) + (j - (len(conditions) - 1) / 2) * width
        ax.bar(xs, values, width, yerr=errs, capsize=3, label=cond)
    ax.axhline(50, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(np.arange(len(models)), models)
    ax.set_ylim(0, 100)
    ax.set_ylabel("human accuracy vs real (%)")
    ax.set_title(f"Real or generated? {report.answers} votes, {report.raters} raters")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return write_atomically(Path(path), buffer.getvalue())


def write_csv_to(rows: Sequence[dict], stream: TextIO) -> None:
    """One line per answer (columns :data:`CSV_COLUMNS`), timestamps in ISO 8601 UTC."""
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        when = datetime.fromtimestamp(r["answered_at"], tz=timezone.utc).isoformat(timespec="milliseconds")
        client = "" if r["client_latency_ms"] is None else f"{r['client_latency_ms']:.1f}"
        writer.writerow(
            csv_safe(cell)
            for cell in [
                r["id"],
                r["session_id"],
                r["rater_name"],
                r["worker_id"],
                r["feedback"],
                r["position"],
                r["model"],
                r["image_id"],
                r["source_index"],
                "" if r["score"] is None else r["score"],
                r["truth"],
                r["answer"],
                r["correct"],
                f"{r['latency_ms']:.1f}",
                client,
                when,
            ]
        )


def write_image_csv_to(images: Sequence[ImageResult], stream: TextIO) -> None:
    """One line per answered image (columns :data:`IMAGE_CSV_COLUMNS`)."""
    writer = csv.writer(stream)
    writer.writerow(IMAGE_CSV_COLUMNS)
    for i in images:
        cells = [i.image_id, i.model, i.source_index, i.called_real.n, i.called_real.k]
        writer.writerow(csv_safe(cell) for cell in [*cells, f"{i.called_real.rate:.4f}"])


def write_image_csv(images: Sequence[ImageResult], path: str | Path) -> Path:
    """:func:`write_image_csv_to` a file, atomically."""
    buffer = io.StringIO(newline="")
    write_image_csv_to(images, buffer)
    return write_atomically(Path(path), buffer.getvalue().encode())


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """:func:`write_csv_to` a file, atomically."""
    buffer = io.StringIO(newline="")
    write_csv_to(rows, buffer)
    return write_atomically(Path(path), buffer.getvalue().encode())


REPORT_FILES = ("report.md", "report.png", "answers.csv", "images.csv")


def _output_folder(out: Path, force: bool) -> Path:
    """``out``, created if needed; refuses a file, and files of an earlier report unless ``force``."""
    if out.exists() and not out.is_dir():
        raise ImprovedGANError(
            f"--out {out} is a file, not a folder; give a folder (it is created if needed)"
        )
    for name in REPORT_FILES:
        target = out / name
        if target.exists() and not target.is_file():
            raise ImprovedGANError(f"{target} exists and is not a file; give another --out")
        if target.exists() and not force:
            raise ImprovedGANError(f"{target} exists; pass --force to overwrite it, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


@dataclass(frozen=True)
class ReportFiles:
    report: StudyReport
    markdown: Path
    chart: Path
    csv: Path
    text: str
    images_csv: Path
    summary: str  # ``text`` without the per-image table, for the terminal


def write_report(
    db_path: str | Path,
    out_dir: str | Path | None = None,
    top_percent: float = 1.0,
    force: bool = False,
    include_unfinished: bool = False,
) -> ReportFiles:
    """Read a study database and write ``report.md``, ``report.png``, ``answers.csv`` and
    ``images.csv`` (one line per answered image).

    Only completed sessions are counted (and written to the CSV) unless ``include_unfinished``;
    the report says how many unfinished ones were left out. ``out_dir`` defaults to
    ``<db name>_report/`` next to the database. Files of an earlier report there are refused
    unless ``force``; each file is replaced atomically.
    """
    if not 0 < top_percent <= 100:
        raise ImprovedGANError(f"--top-percent must be in (0, 100], got {top_percent}")
    db_path = Path(db_path)
    db = StudyDB(db_path, create=False)
    try:
        rows, unfinished = completed_only(db.answer_rows(), include_unfinished)
        report = summarize(rows, db.image_scores(), top_percent, db.session_counts()[1], unfinished)
    finally:
        db.close()
    out = Path(out_dir) if out_dir is not None else db_path.with_name(db_path.stem + "_report")
    out = _output_folder(out, force)
    title = f"Visual Turing test: {db_path.name}"
    text, summary = render_markdown(report, title), render_markdown(report, title, per_image=False)
    chart = plot_report(report, out / "report.png")
    markdown = write_atomically(out / "report.md", text.encode())
    answers = write_csv(rows, out / "answers.csv")
    images = write_image_csv(report.images, out / "images.csv")
    return ReportFiles(report, markdown, chart, answers, text, images, summary)
