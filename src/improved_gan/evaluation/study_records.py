"""What a visual Turing study stores: the answer labels, the SQLite schema, and the records
of sessions, trials and answers that :class:`~improved_gan.evaluation.study_db.StudyDB` returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SCHEMA_VERSION = 2
#: ``PRAGMA application_id`` of every study file (ASCII "IGtt"): a file without it is not ours.
APPLICATION_ID = 0x49477474
#: The tables of a study; a schema-1 file (written before the mark) is recognised by them.
TABLES = ("meta", "sources", "images", "sessions", "trials", "answers")
REAL = "real"
FAKE = "fake"
ANSWERS = (REAL, FAKE)

SCHEMA = """
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
    completion_code TEXT NOT NULL, draw TEXT NOT NULL DEFAULT 'balanced', seed INTEGER);
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

#: Schema 1 -> 2: sessions record how their trials were drawn (all schema-1 sessions were balanced).
MIGRATE_1_TO_2 = """
ALTER TABLE sessions ADD COLUMN draw TEXT NOT NULL DEFAULT 'balanced';
ALTER TABLE sessions ADD COLUMN seed INTEGER;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
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


@dataclass(frozen=True)
class Mistake:
    """A wrong answer of a completed session: the image's trial ``token``, the answer and the truth."""

    token: str
    answer: str
    truth: str


class AnswerRefused(Exception):
    """An answer that is not stored; ``status`` is the HTTP status to reply with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def token_hash(token: str) -> str:
    """The database keeps only a hash of session tokens, so a copy of it cannot resume a session."""
    return hashlib.sha256(token.encode()).hexdigest()
