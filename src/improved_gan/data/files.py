"""Locating and downloading the files of the non-IDX datasets (CIFAR-10, SVHN, image folders).

The same data roots as :mod:`improved_gan.data.datasets` (``--data-dir``, ``$IMPROVED_GAN_DATA``,
``data/`` of this repository, the user cache), one folder per dataset (``cifar10/``, ``svhn/``,
``imagefolder/``); a missing file is downloaded from its canonical URL into the first writable
root and verified by md5 (the checksums the dataset authors publish) before it is moved into place.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from improved_gan.data.datasets import ENV_VAR, DatasetNotFoundError, _download_dir, candidate_dirs
from improved_gan.data.download import download_verified


@dataclass(frozen=True)
class RemoteFile:
    """A file of a dataset: its standard name, canonical URLs and the published md5."""

    name: str
    urls: tuple[str, ...]
    md5: str


@dataclass(frozen=True)
class FileDataset:
    """Where a dataset lives: its folder under a data root (and optional system folders)."""

    name: str
    folder: str
    system_dirs: tuple[str, ...] = field(default_factory=tuple)


def md5_of_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verify_md5(expected: str):
    def verify(path: Path) -> str | None:
        got = md5_of_file(path)
        return None if got == expected else f"md5 mismatch (got {got}, expected {expected})"

    return verify


def find_in_roots(dataset: FileDataset, names: tuple[str, ...], data_dir: str | Path | None) -> Path | None:
    """The first ``<dir>/<name>`` that is a file or a folder, over the candidate folders (in
    order) and ``names`` (a pipe or device under a dataset's name is passed over, never read)."""
    for folder in candidate_dirs(dataset, data_dir):  # type: ignore[arg-type]
        for name in names:
            path = folder / name
            if path.is_file() or path.is_dir():
                return path
    return None


def locate_file(
    dataset: FileDataset,
    file: RemoteFile,
    data_dir: str | Path | None = None,
    download: bool = True,
    alternatives: tuple[str, ...] = (),
) -> Path:
    """Path of ``file`` (or of one of ``alternatives``, e.g. an extracted folder), downloading
    ``file`` from its URLs (md5-verified) when allowed and nothing is found."""
    found = find_in_roots(dataset, (*alternatives, file.name), data_dir)
    if found is not None:
        return found
    failures: list[str] = []
    target = _download_dir(dataset, data_dir) / file.name  # type: ignore[arg-type]
    if download:
        failures = download_verified(list(file.urls), target, _verify_md5(file.md5), timeout=60.0)
        if target.is_file():
            return target
    looked = ", ".join(str(d) for d in candidate_dirs(dataset, data_dir))  # type: ignore[arg-type]
    tried = "; download failed: " + " | ".join(failures) if failures else "; downloading was disabled"
    wanted = " or ".join((*alternatives, file.name))
    raise DatasetNotFoundError(
        f"{dataset.name}: {wanted} not found (looked in {looked}{tried}). Fix: put it in "
        f"<root>/{dataset.folder}/ and pass --data-dir <root> or set {ENV_VAR}=<root>"
    )
