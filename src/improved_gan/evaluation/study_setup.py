"""Opening a visual Turing study: the study database, with the real and generated images loaded,
harmonised and stored the first time, and the same study reused on a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from improved_gan.errors import ImprovedGANError
from improved_gan.evaluation.image_sources import ImageSet, harmonise, load_source, parse_fake_spec
from improved_gan.evaluation.study_db import REAL, StudyDB
from improved_gan.evaluation.study_file import study_version
from improved_gan.evaluation.web import origin_of


def prepare_study(
    db_path: str | Path,
    real: str | None,
    fakes: Sequence[str] = (),
    images_per_source: int = 500,
    seed: int = 0,
) -> StudyDB:
    """Open a study database, storing its images the first time.

    ``real``: a folder of images, an ``.npz`` (key ``images``) or ``mnist`` / ``fashion-mnist``.
    ``fakes``: each a folder, an ``.npz`` or a training run directory, optionally ``NAME=PATH``.
    Up to ``images_per_source`` images per source are kept (a random subset fixed by ``seed``; a
    run directory is sampled with that seed). A database that already holds a study is reused
    when the sources are the same or not given again (a restart), and refused otherwise; an
    existing file that is not a study database is refused before anything is written to it. The
    sources are loaded before a new study file is made, so a bad source leaves no file behind.
    """
    db_path = Path(db_path)
    if not db_path.parent.is_dir():
        raise ImprovedGANError(f"--db {db_path}: folder {db_path.parent} does not exist; create it first")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ImprovedGANError(
            f"--seed must be a whole number from 0 to 2**63 - 1, got {seed}; e.g. --seed 0"
        )
    named = [parse_fake_spec(f) for f in fakes]
    spec = {
        "real": origin_of(real) if real is not None else None,
        "fakes": [[name, origin_of(path)] for name, path in named],
        "images_per_source": images_per_source,
        "seed": seed,
    }
    if study_version(db_path) is not None:  # refuses, untouched, a file that is not a study
        db = StudyDB(db_path, create=False)
        try:
            if db.has_images():
                _check_restart(db, real, fakes, spec)
                return db
        except BaseException:
            db.close()
            raise
        db.close()
    sets = _load_sets(real, named, images_per_source, seed)
    db = StudyDB(db_path)
    try:
        db.store_images(sets[0], sets[1:], spec)
    except BaseException:
        db.close()
        raise
    return db


def _check_restart(db: StudyDB, real: str | None, fakes: Sequence[str], spec: dict) -> None:
    """A study is continued with the sources it was made from, or with none given."""
    stored = db.study_spec()
    if (real is not None or fakes) and stored != spec:
        raise ImprovedGANError(
            f"{db.path} already holds a study made from real={stored['real']} fakes="
            f"{[n for n, _ in stored['fakes']]} ({stored['images_per_source']} images, seed "
            f"{stored['seed']}); give the same sources (or none) to continue it, or another --db"
        )


def _load_sets(
    real: str | None, named: Sequence[tuple[str, str]], images_per_source: int, seed: int
) -> list[ImageSet]:
    """The real set and one set per model, harmonised; loaded before a new study file is made."""
    if real is None or not named:
        raise ImprovedGANError("a new study needs --real and at least one --fake")
    names = [name for name, _ in named]
    if len(set(names)) != len(names) or REAL in names:
        raise ImprovedGANError(
            f"model names must be distinct and not 'real', got {names}; name them with --fake NAME=PATH"
        )
    real_set = load_source(real, REAL, images_per_source, seed, fake=False)
    fake_sets = [load_source(path, name, images_per_source, seed, fake=True) for name, path in named]
    return harmonise([real_set, *fake_sets])
