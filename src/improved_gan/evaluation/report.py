"""Results of a visual Turing study: accuracy per model, per rater and per feedback condition.

The paper (Salimans et al. 2016, section 4 and 6) reports the fraction of votes in which people
told real from generated on a 50/50 mix: 52.4 % on MNIST (2,000 votes), 78.7 % on CIFAR-10, 71.4 %
on CIFAR-10 samples filtered to the top 1 % by Inception score. Here "accuracy against a model"
is the balanced accuracy (real-image accuracy + that model's fake-image accuracy) / 2, which is the
paper's number for a 50/50 mix and stays fair when several models share the real images.

Intervals are 95 %: Wilson score intervals for proportions, and for a balanced accuracy a normal
interval with Agresti-Caffo (+1 success, +1 failure) variances. They treat votes as independent,
as the paper's counts do; votes of one rater are correlated, so read them as a lower bound on
the uncertainty when few raters gave many votes.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import numpy as np

from improved_gan.errors import ImprovedGANError
from improved_gan.evaluation.study_db import FAKE, REAL, StudyDB

Z95 = 1.959963984540054
CONDITIONS = {False: "no feedback", True: "feedback"}
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


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n; (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Proportion:
    """k of n votes, with a 95 % Wilson interval."""

    k: int
    n: int

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.k, self.n)

    def text(self) -> str:
        if not self.n:
            return "–"
        low, high = self.interval
        return f"{100 * self.rate:.1f} % [{100 * low:.1f}, {100 * high:.1f}] (n={self.n})"


def count(rows: Iterable[dict]) -> Proportion:
    rows = list(rows)
    return Proportion(sum(int(r["correct"]) for r in rows), len(rows))


@dataclass(frozen=True)
class Balanced:
    """(real accuracy + fake accuracy) / 2 with a 95 % interval."""

    real: Proportion
    fake: Proportion

    @property
    def rate(self) -> float:
        if not (self.real.n and self.fake.n):
            return float("nan")
        return (self.real.rate + self.fake.rate) / 2

    @property
    def interval(self) -> tuple[float, float]:
        if not (self.real.n and self.fake.n):
            return 0.0, 1.0
        var = 0.0
        for p in (self.real, self.fake):
            adj = (p.k + 1) / (p.n + 2)
            var += adj * (1 - adj) / (p.n + 2)
        half = Z95 * math.sqrt(var) / 2
        return max(0.0, self.rate - half), min(1.0, self.rate + half)

    def text(self) -> str:
        if math.isnan(self.rate):
            return "–"
        low, high = self.interval
        return f"{100 * self.rate:.1f} % [{100 * low:.1f}, {100 * high:.1f}]"


@dataclass(frozen=True)
class ModelResult:
    """One model in one condition (``None`` = all conditions): its fakes called generated, and the
    balanced accuracy against the real images of the same condition."""

    model: str
    condition: str
    fake: Proportion
    balanced: Balanced


@dataclass(frozen=True)
class RaterResult:
    session_id: int
    rater: str
    worker_id: str
    condition: str
    accuracy: Proportion
    real: Proportion
    fake: Proportion
    median_latency_ms: float


@dataclass(frozen=True)
class ConditionResult:
    """Accuracy in one feedback condition, and in the first and second half of each session."""

    condition: str
    raters: int
    accuracy: Proportion
    balanced: Balanced
    first_half: Proportion
    second_half: Proportion
    median_latency_ms: float


@dataclass(frozen=True)
class TopResult:
    """The paper's filter: a model's fakes restricted to the top ``percent`` % of its images by score."""

    model: str
    percent: float
    threshold: float
    images: int
    fake: Proportion
    balanced: Balanced


@dataclass
class StudyReport:
    answers: int
    raters: int
    sessions_completed: int
    overall: Proportion
    real: Proportion
    models: list[ModelResult] = field(default_factory=list)
    conditions: list[ConditionResult] = field(default_factory=list)
    raters_table: list[RaterResult] = field(default_factory=list)
    top: list[TopResult] = field(default_factory=list)
    top_percent: float = 1.0


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def summarize(
    rows: Sequence[dict],
    scores: dict[str, list[float]] | None = None,
    top_percent: float = 1.0,
    sessions_completed: int = 0,
) -> StudyReport:
    """Every number of the report from the answer rows of :meth:`StudyDB.answer_rows`."""
    rows = list(rows)
    real_rows = [r for r in rows if r["truth"] == REAL]
    models = sorted({r["model"] for r in rows if r["truth"] == FAKE})
    report = StudyReport(
        answers=len(rows),
        raters=len({r["session_id"] for r in rows}),
        sessions_completed=sessions_completed,
        overall=count(rows),
        real=count(real_rows),
        top_percent=top_percent,
    )
    present = sorted({bool(r["feedback"]) for r in rows})
    for model in models:
        fake = count(r for r in rows if r["model"] == model)
        report.models.append(ModelResult(model, "all", fake, Balanced(report.real, fake)))
        if len(present) > 1:
            for cond in present:
                real_c = count(r for r in real_rows if bool(r["feedback"]) == cond)
                fake_c = count(r for r in rows if r["model"] == model and bool(r["feedback"]) == cond)
                report.models.append(ModelResult(model, CONDITIONS[cond], fake_c, Balanced(real_c, fake_c)))
    length: dict[int, int] = {}
    for r in rows:  # the session's planned length, else as far as it got
        length[r["session_id"]] = max(length.get(r["session_id"], 0), r.get("n_total") or r["position"] + 1)
    for cond in present:
        sub = [r for r in rows if bool(r["feedback"]) == cond]
        early = [2 * r["position"] < length[r["session_id"]] for r in sub]
        halves = [r for r, e in zip(sub, early) if e], [r for r, e in zip(sub, early) if not e]
        report.conditions.append(
            ConditionResult(
                CONDITIONS[cond],
                len({r["session_id"] for r in sub}),
                count(sub),
                Balanced(
                    count(r for r in sub if r["truth"] == REAL), count(r for r in sub if r["truth"] == FAKE)
                ),
                count(halves[0]),
                count(halves[1]),
                _median([r["latency_ms"] for r in sub]),
            )
        )
    by_session: dict[int, list[dict]] = {}
    for r in rows:
        by_session.setdefault(r["session_id"], []).append(r)
    for sid, sub in sorted(by_session.items()):
        first = sub[0]
        report.raters_table.append(
            RaterResult(
                sid,
                first["rater_name"] or first["worker_id"] or f"session {sid}",
                first["worker_id"],
                CONDITIONS[bool(first["feedback"])],
                count(sub),
                count(r for r in sub if r["truth"] == REAL),
                count(r for r in sub if r["truth"] == FAKE),
                _median([r["latency_ms"] for r in sub]),
            )
        )
    for model, values in sorted((scores or {}).items()):
        if model not in models or not values:
            continue
        threshold = float(np.quantile(np.asarray(values), 1 - top_percent / 100))
        fake = count(
            r for r in rows if r["model"] == model and r["score"] is not None and r["score"] >= threshold
        )
        report.top.append(
            TopResult(
                model,
                top_percent,
                threshold,
                int(sum(v >= threshold for v in values)),
                fake,
                Balanced(report.real, fake),
            )
        )
    return report


def report_from_db(db: StudyDB, top_percent: float = 1.0) -> StudyReport:
    """:func:`summarize` on a study database."""
    return summarize(db.answer_rows(), db.image_scores(), top_percent, db.session_counts()[1])


def render_markdown(report: StudyReport, title: str = "Visual Turing test") -> str:
    """The report as Markdown tables."""
    out = [f"# {title}", ""]
    out.append(
        f"{_n(report.answers, 'answer')} from {_n(report.raters, 'rater')} "
        f"({_n(report.sessions_completed, 'session')} completed). Accuracy is the fraction of votes that told real from generated; 50 % is chance. "
        "Intervals are 95 % (Wilson; balanced accuracy: normal with Agresti-Caffo variances)."
    )
    out += [
        "",
        f"- Overall accuracy: {report.overall.text()}",
        f"- Real images called real: {report.real.text()}",
    ]
    out += [
        "",
        "## Per model",
        "",
        "| model | condition | fakes called generated | accuracy vs real (balanced) | human error |",
        "|---|---|---|---|---|",
    ]
    for m in report.models:
        err = "–" if math.isnan(m.balanced.rate) else f"{100 * (1 - m.balanced.rate):.1f} %"
        out.append(f"| {m.model} | {m.condition} | {m.fake.text()} | {m.balanced.text()} | {err} |")
    out += [
        "",
        "## Feedback vs no feedback",
        "",
        "| condition | raters | accuracy | balanced | first half | second half | median latency |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in report.conditions:
        out.append(
            f"| {c.condition} | {c.raters} | {c.accuracy.text()} | {c.balanced.text()} | "
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
                f"| {t.model} | {t.threshold:.4g} | {t.images} | {t.fake.text()} | {t.balanced.text()} |"
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
    return "\n".join(out) + "\n"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "–"


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
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_csv_to(rows: Sequence[dict], stream: TextIO) -> None:
    """One line per answer (columns :data:`CSV_COLUMNS`), timestamps in ISO 8601 UTC."""
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        when = datetime.fromtimestamp(r["answered_at"], tz=timezone.utc).isoformat(timespec="milliseconds")
        client = "" if r["client_latency_ms"] is None else f"{r['client_latency_ms']:.1f}"
        writer.writerow(
            [
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


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """:func:`write_csv_to` a file."""
    path = Path(path)
    with path.open("w", newline="") as f:
        write_csv_to(rows, f)
    return path


@dataclass(frozen=True)
class ReportFiles:
    report: StudyReport
    markdown: Path
    chart: Path
    csv: Path
    text: str


def write_report(
    db_path: str | Path, out_dir: str | Path | None = None, top_percent: float = 1.0
) -> ReportFiles:
    """Read a study database and write ``report.md``, ``report.png`` and ``answers.csv``.

    ``out_dir`` defaults to ``<db name>_report/`` next to the database.
    """
    if not 0 < top_percent <= 100:
        raise ImprovedGANError(f"--top-percent must be in (0, 100], got {top_percent}")
    db_path = Path(db_path)
    db = StudyDB(db_path, create=False)
    try:
        rows = db.answer_rows()
        report = summarize(rows, db.image_scores(), top_percent, db.session_counts()[1])
    finally:
        db.close()
    out = Path(out_dir) if out_dir is not None else db_path.with_name(db_path.stem + "_report")
    out.mkdir(parents=True, exist_ok=True)
    text = render_markdown(report, f"Visual Turing test: {db_path.name}")
    markdown = out / "report.md"
    markdown.write_text(text)
    return ReportFiles(
        report, markdown, plot_report(report, out / "report.png"), write_csv(rows, out / "answers.csv"), text
    )
