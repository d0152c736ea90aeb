"""Raters' sessions of a visual Turing study: trial plans, images shown, answers
validated and stored, and the answers read back for the report.

One file holds the whole study (:class:`~improved_gan.evaluation.study_file.StudyFile`). The images
are stored in it as re-encoded PNGs, so a restart needs nothing but the file; the app serves them
from memory. The database runs in WAL mode with ``synchronous=FULL``; every answer
is committed in its own transaction before the server replies, so an answer the rater saw
acknowledged survives the server being killed.
"""

from __future__ import annotations

import random
import secrets
import sqlite3
import time

from improved_gan.evaluation.study_file import StudyFile as StudyFile
from improved_gan.evaluation.study_records import (
    ANSWERS as ANSWERS,
)
from improved_gan.evaluation.study_records import (
    FAKE as FAKE,
)
from improved_gan.evaluation.study_records import (
    REAL as REAL,
)
from improved_gan.evaluation.study_records import (
    SCHEMA as SCHEMA,
)
from improved_gan.evaluation.study_records import (
    SCHEMA_VERSION as SCHEMA_VERSION,
)
from improved_gan.evaluation.study_records import (
    AnswerRefused as AnswerRefused,
)
from improved_gan.evaluation.study_records import (
    AnswerResult as AnswerResult,
)
from improved_gan.evaluation.study_records import (
    Mistake as Mistake,
)
from improved_gan.evaluation.study_records import (
    Session as Session,
)
from improved_gan.evaluation.study_records import (
    Trial as Trial,
)
from improved_gan.evaluation.study_records import (
    token_hash as token_hash,
)
from improved_gan.evaluation.trial_plan import draw_for, plan_trials


class StudyDB(StudyFile):
    """A study file. Thread-safe: one SQLite connection per thread, writes in IMMEDIATE transactions."""

    # -- sessions ----------------------------------------------------------------------------------
    def new_session(
        self, rater_name: str, worker_id: str, feedback: bool, n_total: int
    ) -> tuple[str, Session]:
        """Open a session with its trial plan (:func:`plan_trials`); returns (secret cookie token,
        session).

        Without feedback half the images are real (the odd one drawn at random); with feedback
        each is real or generated independently (p = 0.5), so counting past answers tells nothing.
        The generated ones are spread evenly over the models; no image repeats; random order. The
        plan's random generator is seeded per session (the seed is stored with the session).
        """
        conn = self.connection()
        pools: dict[str, list[int]] = {}
        for source, image_id in conn.execute("SELECT source, id FROM images ORDER BY id"):
            pools.setdefault(source, []).append(image_id)
        real_name = next(name for name, is_real, _, _ in self.sources() if is_real)
        draw, seed = draw_for(feedback), secrets.randbits(63)
        chosen = plan_trials(random.Random(seed), pools, real_name, n_total, draw)
        token = secrets.token_urlsafe(32)
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO sessions (token_hash, csrf, rater_name, worker_id, feedback, n_total, created_at,"
                " completion_code, draw, seed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token_hash(token),
                    secrets.token_urlsafe(32),
                    rater_name,
                    worker_id,
                    int(feedback),
                    n_total,
                    time.time(),
                    secrets.token_hex(5).upper(),
                    draw,
                    seed,
                ),
            )
            session_id = cur.lastrowid
            conn.executemany(
                "INSERT INTO trials (session_id, position, image_id, token) VALUES (?, ?, ?, ?)",
                (
                    (session_id, pos, image_id, secrets.token_urlsafe(24))
                    for pos, image_id in enumerate(chosen)
                ),
            )
        session = self.session_by_token(token)
        assert session is not None
        return token, session

    def session_by_token(self, token: str | None) -> Session | None:
        if not token or len(token) > 128:
            return None
        row = (
            self.connection()
            .execute(
                "SELECT s.id, s.csrf, s.rater_name, s.worker_id, s.feedback, s.n_total, s.completion_code,"
                " (SELECT COUNT(*) FROM answers a WHERE a.session_id = s.id)"
                " FROM sessions s WHERE s.token_hash = ?",
                (token_hash(token),),
            )
            .fetchone()
        )
        if row is None:
            return None
        sid, csrf, name, worker, feedback, n_total, code, answered = row
        return Session(sid, csrf, name, worker, bool(feedback), n_total, answered, code)

    def current_trial(self, session: Session) -> Trial | None:
        """The next image to rate, or None when the session is complete."""
        if session.done:
            return None
        row = (
            self.connection()
            .execute(
                "SELECT token, position FROM trials WHERE session_id = ? AND position = ?",
                (session.id, session.answered),
            )
            .fetchone()
        )
        return Trial(row[0], row[1]) if row else None

    def last_feedback(self, session: Session) -> AnswerResult | None:
        """The outcome of the session's last answer (shown only in the feedback condition)."""
        row = (
            self.connection()
            .execute(
                "SELECT correct, truth FROM answers WHERE session_id = ? ORDER BY position DESC LIMIT 1",
                (session.id,),
            )
            .fetchone()
        )
        return None if row is None else AnswerResult(bool(row[0]), row[1], session)

    def trial_image(self, session: Session, token: str) -> int | None:
        """The image id of a trial of this session that is current or answered; marks it shown.

        Future trials are refused: the browser only ever learns the current trial's token anyway.
        """
        conn = self.connection()
        row = conn.execute(
            "SELECT id, position, shown_at, image_id FROM trials WHERE token = ? AND session_id = ?",
            (token, session.id),
        ).fetchone()
        if row is None or row[1] > session.answered:
            return None
        if row[2] is None:
            # Not worth an fsync: a mark lost to a power cut only means the rater reloads the image.
            # Process kills lose nothing either way, and the next answer's commit syncs the log.
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with self.transaction() as conn:
                    conn.execute(
                        "UPDATE trials SET shown_at = ? WHERE id = ? AND shown_at IS NULL",
                        (time.time(), row[0]),
                    )
            finally:
                conn.execute("PRAGMA synchronous=FULL")
        return row[3]

    def record_answer(
        self, session: Session, token: str, answer: str, client_ms: float | None
    ) -> AnswerResult:
        """Validate and store one answer, committed before this returns.

        Refused: an answer other than real/fake, a trial that is not this session's, one whose
        image was never shown, one that is not the current trial, and a second answer to a trial.
        """
        if answer not in ANSWERS:
            raise AnswerRefused(400, "answer must be 'real' or 'fake'")
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT t.id, t.position, t.shown_at, t.image_id, i.source, i.is_real,"
                " (SELECT COUNT(*) FROM answers a WHERE a.session_id = t.session_id),"
                " EXISTS (SELECT 1 FROM answers a WHERE a.trial_id = t.id)"
                " FROM trials t JOIN images i ON i.id = t.image_id WHERE t.token = ? AND t.session_id = ?",
                (token, session.id),
            ).fetchone()
            if row is None:
                raise AnswerRefused(404, "unknown image")
            trial_id, position, shown_at, image_id, source, is_real, answered, exists = row
            if exists:
                raise AnswerRefused(409, "this image was already answered")
            if shown_at is None:
                raise AnswerRefused(409, "this image was not shown yet")
            if position != answered:
                raise AnswerRefused(409, "this is not the current image")
            now = time.time()
            truth = REAL if is_real else FAKE
            try:
                conn.execute(
                    "INSERT INTO answers (trial_id, session_id, rater_name, worker_id, image_id, model, truth,"
                    " answer, correct, feedback, position, latency_ms, client_latency_ms, answered_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        trial_id,
                        session.id,
                        session.rater_name,
                        session.worker_id,
                        image_id,
                        REAL if is_real else source,
                        truth,
                        answer,
                        int(answer == truth),
                        int(session.feedback),
                        position,
                        (now - shown_at) * 1000.0,
                        client_ms,
                        now,
                    ),
                )
            except sqlite3.IntegrityError as exc:  # a concurrent duplicate, caught by UNIQUE(trial_id)
                raise AnswerRefused(409, "this image was already answered") from exc
            if position + 1 >= session.n_total:
                conn.execute("UPDATE sessions SET completed_at = ? WHERE id = ?", (now, session.id))
        updated = Session(
            session.id,
            session.csrf,
            session.rater_name,
            session.worker_id,
            session.feedback,
            session.n_total,
            answered + 1,
            session.completion_code,
        )
        return AnswerResult(answer == truth, truth, updated)

    # -- the admin page --------------------------------------------------------------------------
    def admin_token(self, given: str | None = None, rotate: bool = False) -> str:
        """The ``/admin`` token kept in the study file: made once at random and reused on every
        restart; ``given`` replaces it, ``rotate`` replaces it with a new random one. (Whoever can
        read the file can read the results anyway, so keeping it in plain text gives nothing away.)"""
        new = given or secrets.token_urlsafe(24)
        verb = "INSERT OR REPLACE" if given or rotate else "INSERT OR IGNORE"
        with self.transaction() as conn:
            conn.execute(f"{verb} INTO meta VALUES ('admin_token', ?)", (new,))
            row = conn.execute("SELECT value FROM meta WHERE key = 'admin_token'").fetchone()
        return str(row[0])

    # -- results -----------------------------------------------------------------------------------
    def answer_rows(self) -> list[dict]:
        """Every answer, with the answered image's source and score and when its session was
        completed (``completed_at``, None while unfinished), in the order they came."""
        conn = self.connection()
        cur = conn.execute(
            "SELECT a.id, a.session_id, a.rater_name, a.worker_id, a.image_id, i.source, i.source_index,"
            " i.score, a.model, a.truth, a.answer, a.correct, a.feedback, a.position, a.latency_ms,"
            " a.client_latency_ms, a.answered_at, s.n_total, s.draw, s.completed_at"
            " FROM answers a JOIN images i ON i.id = a.image_id"
            " JOIN sessions s ON s.id = a.session_id ORDER BY a.id"
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def image_scores(self) -> dict[str, list[float]]:
        """Scores of every stored image of each model that has scores."""
        out: dict[str, list[float]] = {}
        for source, score in self.connection().execute(
            "SELECT source, score FROM images WHERE is_real = 0 AND score IS NOT NULL"
        ):
            out.setdefault(source, []).append(score)
        return out

    def session_correct(self, session: Session) -> int:
        """How many of the session's answers were right."""
        row = (
            self.connection()
            .execute("SELECT COALESCE(SUM(correct), 0) FROM answers WHERE session_id = ?", (session.id,))
            .fetchone()
        )
        return int(row[0])

    def session_mistakes(self, session: Session) -> list[Mistake]:
        """The wrong answers of a completed session, in order; none while it is unfinished, so no
        image's truth is told before every image of the session has been answered."""
        if not session.done:
            return []
        rows = self.connection().execute(
            "SELECT t.token, a.answer, a.truth FROM answers a JOIN trials t ON t.id = a.trial_id"
            " WHERE a.session_id = ? AND a.correct = 0 ORDER BY a.position",
            (session.id,),
        )
        return [Mistake(*row) for row in rows]

    def session_counts(self) -> tuple[int, int]:
        """(sessions opened, sessions completed)."""
        row = self.connection().execute("SELECT COUNT(*), COUNT(completed_at) FROM sessions").fetchone()
        return int(row[0]), int(row[1])
