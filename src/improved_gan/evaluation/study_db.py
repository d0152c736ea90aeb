"""SQLite storage of a visual Turing study: its images, raters' sessions, trials and answers.

One file holds the whole study. The images are stored in it as re-encoded PNGs, so a restart
needs nothing but the file, and no request ever reads anything else from disk. The database runs
in WAL mode with ``synchronous=FULL``; every answer is committed in its own transaction before the
server replies, so an answer the rater saw acknowledged survives the server being killed.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from improved_gan.errors import ImprovedGANError
from improved_gan.evaluation.image_sources import ImageSet, encode_png

SCHEMA_VERSION = 1
REAL = "real"
FAKE = "fake"
ANSWERS = (REAL, FAKE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY, is_real INTEGER NOT NULL, origin TEXT NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL REFERENCES sources(name), is_real INTEGER NOT NULL,
    source_index INTEGER NOT NULL, score REAL, png BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, csrf TEXT NOT NULL,
    rater_name TEXT NOT NULL, worker_id TEXT NOT NULL, feedback INTEGER NOT NULL,
    n_total INTEGER NOT NULL, created_at REAL NOT NULL, completed_at REAL,
    completion_code TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
    position INTEGER NOT NULL, image_id INTEGER NOT NULL REFERENCES images(id),
    token TEXT NOT NULL UNIQUE, shown_at REAL, UNIQUE (session_id, position));
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY, trial_id INTEGER NOT NULL UNIQUE REFERENCES trials(id),
    session_id INTEGER NOT NULL REFERENCES sessions(id), rater_name TEXT NOT NULL,
    worker_id TEXT NOT NULL, image_id INTEGER NOT NULL REFERENCES images(id),
    model TEXT NOT NULL, truth TEXT NOT NULL, answer TEXT NOT NULL, correct INTEGER NOT NULL,
    feedback INTEGER NOT NULL, position INTEGER NOT NULL, latency_ms REAL NOT NULL,
    client_latency_ms REAL, answered_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS answers_by_session ON answers (session_id, position);
"""


@dataclass(frozen=True)
class Session:
    """A rater's session. ``answered`` counts the answers stored so far."""

    id: int
    csrf: str
    rater_name: str
    worker_id: str
    feedback: bool
    n_total: int
    answered: int
    completion_code: str

    @property
    def done(self) -> bool:
        return self.answered >= self.n_total


@dataclass(frozen=True)
class Trial:
    """The image a session is to rate next, known to the browser only by its random ``token``."""

    token: str
    position: int


@dataclass(frozen=True)
class AnswerResult:
    """What the server may tell after an answer: ``truth`` is for the feedback condition only."""

    correct: bool
    truth: str
    session: Session


class AnswerRefused(Exception):
    """An answer that is not stored; ``status`` is the HTTP status to reply with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def token_hash(token: str) -> str:
    """The database keeps only a hash of session tokens, so a copy of it cannot resume a session."""
    return hashlib.sha256(token.encode()).hexdigest()


class StudyDB:
    """A study file. Thread-safe: one SQLite connection per thread, writes in IMMEDIATE transactions."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise ImprovedGANError(
                f"{self.path}: no such study database; give the file `turing serve --db` wrote"
            )
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        try:
            conn = self.connection()
            if create:
                conn.executescript(_SCHEMA)  # CREATE ... IF NOT EXISTS only
                conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ImprovedGANError(f"{self.path}: not a study database ({exc})") from exc
        if version is None or int(version[0]) != SCHEMA_VERSION:
            self.close()
            found = "no study schema" if version is None else f"study schema {version[0]}"
            raise ImprovedGANError(f"{self.path}: {found}; this version reads schema {SCHEMA_VERSION}")

    # -- connections -------------------------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once (BEGIN IMMEDIATE) so concurrent writers queue up."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- the study's images ------------------------------------------------------------------------
    def has_images(self) -> bool:
        return self.connection().execute("SELECT 1 FROM images LIMIT 1").fetchone() is not None

    def study_spec(self) -> dict | None:
        row = self.connection().execute("SELECT value FROM meta WHERE key = 'spec'").fetchone()
        return None if row is None else json.loads(row[0])

    def store_images(self, real: ImageSet, fakes: Sequence[ImageSet], spec: dict) -> None:
        """Store the study's images (re-encoded) and the spec that made them, once per study."""
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM images LIMIT 1").fetchone():
                raise ImprovedGANError(f"{self.path} already holds a study's images")
            conn.execute("INSERT INTO meta VALUES ('spec', ?)", (json.dumps(spec, sort_keys=True),))
            shape = list(real.images.shape[1:])
            conn.execute("INSERT INTO meta VALUES ('image_shape', ?)", (json.dumps(shape),))
            for image_set, is_real in [(real, 1)] + [(f, 0) for f in fakes]:
                conn.execute(
                    "INSERT INTO sources VALUES (?, ?, ?, ?)",
                    (image_set.name, is_real, image_set.origin, len(image_set.images)),
                )
                scores = image_set.scores
                conn.executemany(
                    "INSERT INTO images (source, is_real, source_index, score, png) VALUES (?, ?, ?, ?, ?)",
                    (
                        (
                            image_set.name,
                            is_real,
                            int(image_set.indices[i]),
                            None if scores is None else float(scores[i]),
                            encode_png(image_set.images[i]),
                        )
                        for i in range(len(image_set.images))
                    ),
                )

    def sources(self) -> list[tuple[str, bool, str, int]]:
        """(name, is_real, origin, count) for every source, the real one first."""
        rows = (
            self.connection()
            .execute("SELECT name, is_real, origin, count FROM sources ORDER BY is_real DESC, rowid")
            .fetchall()
        )
        return [(n, bool(r), o, c) for n, r, o, c in rows]

    def image_shape(self) -> tuple[int, ...]:
        row = self.connection().execute("SELECT value FROM meta WHERE key = 'image_shape'").fetchone()
        return tuple(json.loads(row[0])) if row else ()

    # -- sessions ----------------------------------------------------------------------------------
    def new_session(
        self, rater_name: str, worker_id: str, feedback: bool, n_total: int
    ) -> tuple[str, Session]:
        """Open a session with its balanced trial plan; returns (secret cookie token, session).

        Half the images are real, half generated (the odd one drawn at random), the generated
        ones spread evenly over the models; no image repeats within a session; random order.
        """
        rng = random.SystemRandom()
        conn = self.connection()
        pools: dict[str, list[int]] = {}
        for source, image_id in conn.execute("SELECT source, id FROM images ORDER BY id"):
            pools.setdefault(source, []).append(image_id)
        real_name = next(name for name, is_real, _, _ in self.sources() if is_real)
        models = [name for name, is_real, _, _ in self.sources() if not is_real]
        n_real = n_total // 2 + (rng.random() < 0.5 if n_total % 2 else 0)
        n_fake = n_total - n_real
        per_model = {m: n_fake // len(models) for m in models}
        for m in rng.sample(models, n_fake % len(models)):
            per_model[m] += 1
        chosen = rng.sample(pools[real_name], n_real)
        for m, k in per_model.items():
            chosen += rng.sample(pools[m], k)
        rng.shuffle(chosen)
        token = secrets.token_urlsafe(32)
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO sessions (token_hash, csrf, rater_name, worker_id, feedback, n_total, created_at,"
                " completion_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token_hash(token),
                    secrets.token_urlsafe(32),
                    rater_name,
                    worker_id,
                    int(feedback),
                    n_total,
                    time.time(),
                    secrets.token_hex(5).upper(),
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

    def trial_image(self, session: Session, token: str) -> bytes | None:
        """The PNG of a trial of this session that is current or answered; marks it shown.

        Future trials are refused: the browser only ever learns the current trial's token anyway.
        """
        conn = self.connection()
        row = conn.execute(
            "SELECT t.id, t.position, t.shown_at, i.png FROM trials t JOIN images i ON i.id = t.image_id"
            " WHERE t.token = ? AND t.session_id = ?",
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

    # -- results -----------------------------------------------------------------------------------
    def answer_rows(self) -> list[dict]:
        """Every answer, with the answered image's source and score, in the order they came."""
        conn = self.connection()
        cur = conn.execute(
            "SELECT a.id, a.session_id, a.rater_name, a.worker_id, a.image_id, i.source, i.source_index,"
            " i.score, a.model, a.truth, a.answer, a.correct, a.feedback, a.position, a.latency_ms,"
            " a.client_latency_ms, a.answered_at, s.n_total FROM answers a JOIN images i ON i.id = a.image_id"
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

    def session_counts(self) -> tuple[int, int]:
        """(sessions opened, sessions completed)."""
        row = self.connection().execute("SELECT COUNT(*), COUNT(completed_at) FROM sessions").fetchone()
        return int(row[0]), int(row[1])
