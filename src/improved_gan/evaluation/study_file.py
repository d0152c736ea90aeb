"""The study file itself: recognising it, creating and migrating it, one SQLite connection per
thread, write transactions, and the study's images and their sources stored in it.

A study file is marked as ours (``PRAGMA application_id`` = :data:`APPLICATION_ID`, ``user_version``
= the schema version) when it is created. Any existing file is checked, read-only, before anything
is written to it, so an unrelated database given as ``--db`` is refused byte for byte untouched.
The database runs in WAL mode with ``synchronous=FULL``; the raters' sessions, trials and answers
on top of it are :class:`~improved_gan.evaluation.study_db.StudyDB`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np

from improved_gan.errors import ImprovedGANError
from improved_gan.evaluation.image_sources import ImageSet, decode_png, encode_png
from improved_gan.evaluation.study_records import (
    APPLICATION_ID,
    MIGRATE_1_TO_2,
    SCHEMA,
    SCHEMA_VERSION,
    TABLES,
)

SQLITE_MAGIC = b"SQLite format 3\x00"
_NOT_OURS = "give the file `turing serve --db` wrote, or a new file name for a new study"


def study_version(path: Path) -> int | None:
    """The schema version of the study file at ``path``, None when there is none yet (no file or
    an empty one); refuses, without writing anything, any file that is not a study of ours."""
    if not path.exists():
        return None
    if path.is_dir():
        raise ImprovedGANError(f"{path} is a folder, not a study database; {_NOT_OURS}")
    with path.open("rb") as f:
        header = f.read(100)
    if not header:
        return None
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise ImprovedGANError(f"{path}: not a study database (not an SQLite file); {_NOT_OURS}")
    if int.from_bytes(header[68:72], "big") not in (0, APPLICATION_ID):
        raise ImprovedGANError(f"{path}: not a study database (another application's); {_NOT_OURS}")
    try:  # read-only: nothing is written to a file that may not be ours
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            app_id, version = _marks(conn)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            legacy = app_id == 0 and set(TABLES) <= tables and _meta_version(conn) == 1
    except sqlite3.Error as exc:
        raise ImprovedGANError(f"{path}: not a study database ({exc}); {_NOT_OURS}") from None
    if legacy:
        return 1
    if app_id != APPLICATION_ID:
        raise ImprovedGANError(f"{path}: not a study database (an unrelated SQLite file); {_NOT_OURS}")
    if not 1 <= version <= SCHEMA_VERSION:
        raise ImprovedGANError(
            f"{path}: study schema {version}; this version of improved-gan reads schemas 1 to "
            f"{SCHEMA_VERSION}: upgrade it"
        )
    return version


def _marks(conn: sqlite3.Connection) -> tuple[int, int]:
    return (
        conn.execute("PRAGMA application_id").fetchone()[0],
        conn.execute("PRAGMA user_version").fetchone()[0],
    )


def _meta_version(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row and str(row[0]).isdigit() else None


def _create(path: Path) -> None:
    """A new study file: marked, with its schema, in one transaction (rollback journal, so the
    mark is in the main file from the start)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript(
            f"BEGIN; PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
            f"{SCHEMA} INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
        )


class StudyFile:
    """The SQLite file of a study and its images; sessions and answers are :class:`StudyDB`'s.

    ``create``: make a new study file when there is none; otherwise one must exist."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        version = study_version(self.path)
        if version is None and not create:
            raise ImprovedGANError(
                f"{self.path}: no such study database; give the file `turing serve --db` wrote"
            )
        if version is None:
            _create(self.path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        try:
            if version == 1:
                self._migrate()
            self.connection()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ImprovedGANError(f"{self.path}: damaged study database ({exc})") from exc

    def _migrate(self) -> None:
        with self.transaction() as conn:
            for statement in MIGRATE_1_TO_2.strip().split(";\n"):
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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
        shape = tuple(json.loads(row[0])) if row else ()
        if shape and not (
            len(shape) in (2, 3)
            and all(isinstance(n, int) and 0 < n <= 8192 for n in shape)
            and (len(shape) == 2 or shape[2] == 3)
        ):
            raise ImprovedGANError(f"{self.path}: damaged study database (image shape {list(shape)})")
        return shape

    def pixels(self) -> dict[str, tuple[list[int], np.ndarray]]:
        """Every stored image decoded: source name -> (image ids, uint8 pixels (N, H, W[, 3]))."""
        shape = self.image_shape()
        out: dict[str, tuple[list[int], list[np.ndarray]]] = {}
        for source, image_id, png in self.connection().execute(
            "SELECT source, id, png FROM images ORDER BY id"
        ):
            ids, images = out.setdefault(source, ([], []))
            ids.append(image_id)
            images.append(decode_png(png, shape))
        return {name: (ids, np.stack(images)) for name, (ids, images) in out.items()}
