"""The study file itself: opening it and checking its schema version, one SQLite connection per
thread, write transactions, and the study's images and their sources stored in it.

The database runs in WAL mode with ``synchronous=FULL``; the raters' sessions, trials and answers
on top of it are :class:`~improved_gan.evaluation.study_db.StudyDB`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from improved_gan.errors import ImprovedGANError
from improved_gan.evaluation.image_sources import ImageSet, encode_png
from improved_gan.evaluation.study_records import SCHEMA, SCHEMA_VERSION


class StudyFile:
    """The SQLite file of a study and its images; sessions and answers are :class:`StudyDB`'s."""

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
                conn.executescript(SCHEMA)  # CREATE ... IF NOT EXISTS only
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
