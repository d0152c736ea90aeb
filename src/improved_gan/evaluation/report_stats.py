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

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from improved_gan.evaluation.study_db import FAKE, REAL, StudyDB
from improved_gan.evaluation.trial_plan import BALANCED

Z95 = 1.959963984540054
CONDITIONS = {False: "no feedback", True: "feedback"}


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
    """Accuracy in one feedback condition, and in the first and second half of each session;
    ``draw``: how its sessions drew real or generated (:data:`~.trial_plan.DRAWS`), "+"-joined if mixed."""

    condition: str
    raters: int
    accuracy: Proportion
    balanced: Balanced
    first_half: Proportion
    second_half: Proportion
    median_latency_ms: float
    draw: str = BALANCED


@dataclass(frozen=True)
class TopResult:
    """The paper's filter: a model's fakes restricted to the top ``percent`` % of its images by score."""

    model: str
    percent: float
    threshold: float
    images: int
    fake: Proportion
    balanced: Balanced


@dataclass(frozen=True)
class ImageResult:
    """One answered image: ``model`` is "real" or the model's name; ``called_real`` counts the
    answers "real" among all its answers."""

    image_id: int
    model: str
    source_index: int
    called_real: Proportion


@dataclass(frozen=True)
class Unfinished:
    """Sessions not completed that have answers: left out of the counts unless ``included``."""

    sessions: int = 0
    answers: int = 0
    included: bool = True


def completed_only(rows: Sequence[dict], include_unfinished: bool = False) -> tuple[list[dict], Unfinished]:
    """The answers of completed sessions (all answers if ``include_unfinished``), and what was
    unfinished. Rows come from :meth:`StudyDB.answer_rows` (``completed_at`` None: unfinished)."""
    unfinished = [r for r in rows if r.get("completed_at") is None]
    kept = list(rows) if include_unfinished else [r for r in rows if r.get("completed_at") is not None]
    return kept, Unfinished(len({r["session_id"] for r in unfinished}), len(unfinished), include_unfinished)


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
    unfinished: Unfinished = Unfinished()
    images: list[ImageResult] = field(default_factory=list)


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def summarize(
    rows: Sequence[dict],
    scores: dict[str, list[float]] | None = None,
    top_percent: float = 1.0,
    sessions_completed: int = 0,
    unfinished: Unfinished = Unfinished(),
) -> StudyReport:
    """Every number of the report from the answer rows of :meth:`StudyDB.answer_rows` (those
    counted: see :func:`completed_only`, whose ``unfinished`` the report then mentions)."""
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
        unfinished=unfinished,
        images=per_image(rows),
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
                "+".join(sorted({r.get("draw") or BALANCED for r in sub})),
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


def per_image(rows: Iterable[dict]) -> list[ImageResult]:
    """How often each answered image was called real; real images first, then by model and id."""
    by_image: dict[int, list[dict]] = {}
    for r in rows:
        by_image.setdefault(r["image_id"], []).append(r)
    results = [
        ImageResult(
            image_id,
            sub[0]["model"],
            sub[0]["source_index"],
            Proportion(sum(r["answer"] == REAL for r in sub), len(sub)),
        )
        for image_id, sub in by_image.items()
    ]
    return sorted(results, key=lambda i: (i.model != REAL, i.model, i.image_id))


def report_from_db(db: StudyDB, top_percent: float = 1.0) -> StudyReport:
    """:func:`summarize` on a study database."""
    return summarize(db.answer_rows(), db.image_scores(), top_percent, db.session_counts()[1])
