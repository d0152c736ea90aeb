"""The run directory: the only module that knows its files and the rule for resuming a run.

A run directory holds the resolved ``config.yaml``, ``metrics.jsonl`` (one strict JSON object
per epoch; non-finite numbers are written as ``null``), TensorBoard events under ``tb/``, sample
grids under ``samples/`` and ``checkpoints/last.safetensors`` (atomic, no pickle;
:mod:`improved_gan.utils.checkpoint`).

Resuming: a run continues under its own settings, except those in the config's
:data:`~improved_gan.training.config.RUNTIME_GROUPS` (how long it runs, where it runs and reads
its data, what it logs, the speed options), which do not change what is computed. Nothing of a
run is overwritten by another: a fresh ``train`` into a directory that holds a run, or a
``--resume`` under other settings, is refused before anything is written. Every output is
checked for writability before the first epoch; files are replaced atomically (temp file +
rename), a failed metrics append is rolled back, and leftovers of a killed write are removed.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from improved_gan.data.catalog import OWN_DATASETS
from improved_gan.data.own_data import own_data_classes
from improved_gan.errors import ImprovedGANError
from improved_gan.training.config import TrainConfig, apply_overrides, read_yaml_mapping, validate_config
from improved_gan.utils.atomic import write_atomically
from improved_gan.utils.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from improved_gan.utils.images import save_grid

CONFIG = "config.yaml"
CLASSES = "classes.json"  # class names of a run on a user's own images (improved-gan predict prints them)
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoints/last.safetensors"
SAMPLES = "samples"
TENSORBOARD = "tb"
#: Leftovers of a write that was killed before its rename (removed when a run starts).
STALE_PATTERNS = (
    f"{CONFIG}.tmp",
    f"{METRICS}.tmp",
    ".write-test-*.tmp",
    "checkpoints/last.safetensors.*.tmp",
    f"{SAMPLES}/.epoch_*.tmp.png",
)
_NEW_RUN_DIR = "choose another --run-dir"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@contextmanager
def _writing(path: Path, fix: str) -> Iterator[None]:
    """Turn an OS error (disk full, read-only, permissions) while writing ``path`` into one line."""
    try:
        yield
    except OSError as exc:
        raise ImprovedGANError(f"cannot write {path} ({exc.strerror or exc}); {fix}") from None


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` via ``<name>.tmp`` (a name :data:`STALE_PATTERNS` knows)."""
    write_atomically(path, text, path.with_name(path.name + ".tmp"))


def _strict(value: Any) -> Any:
    """``value`` with every non-finite float as None (strict JSON has no NaN or Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def metrics_line(record: dict) -> str:
    """One epoch's line of ``metrics.jsonl``: strict JSON (non-finite numbers as null)."""
    return json.dumps(_strict(record), allow_nan=False) + "\n"


def _resume_hint(epoch: int) -> str:
    kept = f"the checkpoint of epoch {epoch - 1} is intact" if epoch > 1 else "no epoch was saved yet"
    return f"free disk space or fix the permissions, then continue with --resume ({kept})"


class RunDir:
    """A training run's directory (it may not exist yet)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def find(cls, path: str | Path) -> RunDir | None:
        """The run directory of ``path``: a directory holding ``config.yaml``, or a checkpoint
        (``*.safetensors``) in such a directory's ``checkpoints/``; else None."""
        path = Path(path)
        if path.is_dir() and (path / CONFIG).is_file():
            return cls(path)
        if path.is_file() and path.suffix == ".safetensors" and (path.parent.parent / CONFIG).is_file():
            return cls(path.parent.parent)
        return None

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    def sample_grid_path(self, epoch: int) -> Path:
        return self.path / SAMPLES / f"epoch_{epoch:04d}.png"

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()

    # config.yaml
    def read_config(self) -> TrainConfig:
        """The run's own settings."""
        return self._config_with()

    def resumed_config(
        self,
        overrides: dict[str, Any] | None = None,
        set_items: list[str] | None = None,
        preset: str | None = None,
    ) -> TrainConfig:
        """What ``--resume`` continues: the run's own ``config.yaml`` with only the settings the
        user gave again (``overrides`` that are not None, then ``--set`` items), so nothing has to
        be retyped. A ``preset`` other than the run's own is refused; other changes that are not
        runtime settings are refused by :meth:`prepare`."""
        config = self._config_with(overrides, set_items)
        if preset is not None and preset != config.preset:
            raise ImprovedGANError(
                f"cannot resume {self.path}: it is a run of preset {config.preset}, not {preset}; pass "
                f"{config.preset}, or leave the preset out (`improved-gan train --resume --run-dir {self.path}`)"
            )
        return config

    def _config_with(
        self, overrides: dict[str, Any] | None = None, set_items: list[str] | None = None
    ) -> TrainConfig:
        if not self.config_path.is_file():
            raise ImprovedGANError(
                f"{self.path} is not a run directory (no {CONFIG}); train one with `improved-gan train`, "
                f"or restore its {CONFIG}"
            )
        fix = f"restore the run's {CONFIG} (training writes it) or train again"
        data = apply_overrides(read_yaml_mapping(self.config_path, fix), overrides, set_items)
        try:
            return validate_config(data, str(self.config_path))
        except ImprovedGANError as exc:
            raise ImprovedGANError(f"{exc}; {fix}") from None

    def prepare(self, config: TrainConfig, resume: bool, write: bool = True) -> TrainConfig:
        """Check that ``config`` may start (or, with ``resume``, continue) this run without
        destroying anything in it; with ``write`` also :meth:`start` it (under torchrun rank 0
        alone writes). Returns ``config`` with its ``run_dir``."""
        self._check_place()
        if resume:
            self._check_resume(config)
        else:
            self._check_fresh()
        config = config.model_copy(update={"run_dir": str(self.path)})
        if write:
            self.start(config, self.completed_epoch() if resume else 0)
        return config

    def _check_place(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise ImprovedGANError(f"run directory {self.path} is a file, not a directory; {_NEW_RUN_DIR}")
        for path in (self.config_path, self.metrics_path, self.checkpoint_path):
            if path.is_dir():
                raise ImprovedGANError(
                    f"{path} is a directory where the run keeps a file; move it away or {_NEW_RUN_DIR}"
                )

    def _check_fresh(self) -> None:
        held = [
            n for n in (CHECKPOINT, METRICS) if (self.path / n).is_file() and (self.path / n).stat().st_size
        ]
        if held:
            raise ImprovedGANError(
                f"{self.path} already holds a run ({', '.join(held)}); pass --resume to continue it, "
                f"or {_NEW_RUN_DIR}"
            )
        if self.config_path.exists():  # a run that saved nothing yet may be replaced, anything else not
            try:
                self.read_config()
            except ImprovedGANError:
                raise ImprovedGANError(
                    f"{self.config_path} exists and is not a run's config; move it away or {_NEW_RUN_DIR}"
                ) from None

    def _check_resume(self, config: TrainConfig) -> None:
        if not self.config_path.exists() and self.read_metrics():  # a run writes its config first
            raise ImprovedGANError(
                f"cannot resume {self.path}: it holds {METRICS} but no {CONFIG}, so its settings are "
                f"unknown; restore the run's {CONFIG}, or {_NEW_RUN_DIR}"
            )
        if self.config_path.exists() or self.has_checkpoint():
            old = self.read_config().model_dump()
            free = TrainConfig.runtime_fields()
            differing = [k for k, v in config.model_dump().items() if k not in free and old[k] != v]
            if differing:
                raise ImprovedGANError(
                    f"cannot resume {self.path}: the config differs in {', '.join(differing)}; resume with the "
                    f"same settings (only {', '.join(f for f in free if f not in ('run_dir', 'runs_root'))} "
                    f"may change) or {_NEW_RUN_DIR}"
                )
        done = self.completed_epoch()
        recorded = max((r["epoch"] for r in self.read_metrics()), default=0)
        if recorded > done + 1:  # more than the one epoch a kill between the two writes can leave
            raise ImprovedGANError(
                f"cannot resume {self.path}: {METRICS} records {recorded} epochs but {CHECKPOINT} covers "
                f"{done} (it is missing or older); restore the run's checkpoint, or {_NEW_RUN_DIR}"
            )

    def start(self, config: TrainConfig, epoch: int) -> None:
        """Before the first epoch (``epoch`` = the epochs the checkpoint covers): make the run's
        folders and check that each can be written, remove leftovers of killed writes, keep the
        metrics lines the checkpoint covers and write ``config.yaml``."""
        self._make_outputs(config)
        self.clean_stale()
        if epoch == 0:
            with _writing(self.metrics_path, f"fix the permissions or {_NEW_RUN_DIR}"):
                self.clear_metrics()
        else:
            self.keep_metrics_until(epoch)
        with _writing(self.config_path, f"free disk space, fix the permissions or {_NEW_RUN_DIR}"):
            _write_atomically(self.config_path, config.to_yaml())
            if config.dataset in OWN_DATASETS:
                names = own_data_classes(f"{config.dataset}:{config.data_dir}")
                _write_atomically(self.path / CLASSES, json.dumps(names, ensure_ascii=False) + "\n")

    def _make_outputs(self, config: TrainConfig) -> None:
        folders = {self.path: "files", self.checkpoint_path.parent: "checkpoints"}
        if config.sample_grid:
            folders[self.path / SAMPLES] = "sample grids"
        if config.tensorboard:
            folders[self.tensorboard_dir] = "TensorBoard events"
        for folder, what in folders.items():
            if folder.exists() and not folder.is_dir():
                raise ImprovedGANError(
                    f"{folder} is a file where the run writes its {what}; move it away or {_NEW_RUN_DIR}"
                )
            try:
                folder.mkdir(parents=True, exist_ok=True)
                fd, probe = tempfile.mkstemp(prefix=".write-test-", suffix=".tmp", dir=folder)
                os.close(fd)
                os.unlink(probe)
                if folder == self.path and self.metrics_path.exists():
                    open(self.metrics_path, "a").close()  # appendable (opening writes nothing)
            except OSError as exc:
                raise ImprovedGANError(
                    f"cannot write the run's {what} into {folder} ({exc.strerror or exc}); "
                    f"fix the permissions, free disk space or {_NEW_RUN_DIR}"
                ) from None

    def clean_stale(self) -> None:
        """Remove the temp files of writes that were killed before their rename."""
        for pattern in STALE_PATTERNS:
            for path in self.path.glob(pattern):
                if path.is_file():
                    path.unlink(missing_ok=True)

    # metrics.jsonl
    def read_metrics(self) -> list[dict]:
        """One dict per epoch. A partial last line (a kill mid-append) is left out."""
        return self._parse_metrics()[0]

    def _parse_metrics(self) -> tuple[list[dict], bool]:
        """(the records, whether a partial last line was left out)."""
        if not self.metrics_path.exists():
            return [], False
        try:
            raw = self.metrics_path.read_bytes()
        except OSError as exc:
            raise ImprovedGANError(
                f"cannot read {self.metrics_path} ({exc.strerror or exc}); fix its permissions"
            ) from None
        lines = raw.split(b"\n")
        tail = lines.pop()  # what follows the last newline: empty unless a write was cut short
        records = [self._record(line, n) for n, line in enumerate(lines, 1) if line.strip()]
        if tail.strip():
            try:
                records.append(self._record(tail, len(lines) + 1))
            except ImprovedGANError:
                return records, True
        return records, False

    def _record(self, line: bytes, lineno: int) -> dict:
        where = f"{self.metrics_path}, line {lineno}"
        fix = f"fix or delete that line (each line is one epoch's JSON object), or {_NEW_RUN_DIR}"
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ImprovedGANError(f"{where}: not valid JSON ({type(exc).__name__}); {fix}") from None
        if not isinstance(record, dict):
            raise ImprovedGANError(f"{where}: a JSON {type(record).__name__}, not an object; {fix}")
        epoch = record.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise ImprovedGANError(f"{where}: epoch {epoch!r} is not a positive whole number; {fix}")
        return record

    def append_metrics(self, record: dict) -> None:
        """Append one epoch's line; a failed write is rolled back (no half line is left)."""
        line = metrics_line(record)
        with _writing(self.metrics_path, _resume_hint(record.get("epoch", 0))):
            size = self.metrics_path.stat().st_size if self.metrics_path.exists() else 0
            try:
                with self.metrics_path.open("a", encoding="utf-8") as f:
                    f.write(line)
            except OSError:
                self._truncate(size)
                raise

    def _truncate(self, size: int) -> None:
        try:
            os.truncate(self.metrics_path, size)
        except OSError:
            pass  # the reader leaves a partial last line out

    def keep_metrics_until(self, last_epoch: int) -> None:
        """Keep only the metrics lines of epochs ≤ ``last_epoch`` (those the checkpoint covers);
        the file is replaced atomically."""
        if not self.metrics_path.exists():
            return
        records, partial = self._parse_metrics()
        if partial:
            _warn(f"{self.metrics_path} ends in a partial line (a write was cut short); dropping it")
        kept = "".join(metrics_line(r) for r in records if r["epoch"] <= last_epoch)
        with _writing(self.metrics_path, f"free disk space or fix the permissions; {METRICS} is unchanged"):
            _write_atomically(self.metrics_path, kept)

    def clear_metrics(self) -> None:
        self.metrics_path.unlink(missing_ok=True)

    # samples/
    def save_sample_grid(self, images: np.ndarray, epoch: int) -> Path:
        """Write one epoch's grid of uint8 samples (10 rows, enlarged: :func:`tile_images`) atomically."""
        path = self.sample_grid_path(epoch)
        tmp = path.with_name(f".{path.stem}.tmp.png")
        with _writing(path, _resume_hint(epoch)):
            try:
                save_grid(images, tmp, rows=10)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        return path

    # checkpoints/last.safetensors
    def save_checkpoint(self, tensors: dict[str, torch.Tensor], epoch: int) -> None:
        with _writing(self.checkpoint_path, _resume_hint(epoch)):
            save_checkpoint(self.checkpoint_path, tensors, {"epoch": str(epoch)})

    def load_checkpoint(self) -> tuple[dict[str, torch.Tensor], int]:
        """(tensors, the epoch it completes)."""
        tensors, metadata = load_checkpoint(self.checkpoint_path)
        return tensors, self._epoch(metadata)

    def _epoch(self, metadata: dict[str, str]) -> int:
        raw = metadata.get("epoch")
        if not (isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 10 and int(raw) >= 1):
            raise ImprovedGANError(
                f"checkpoint {self.checkpoint_path}: its epoch {raw!r} is not a positive whole number; "
                "the file was altered: restore it or train again"
            )
        return int(raw)

    def completed_epoch(self) -> int:
        """Epochs the checkpoint covers (0 without one); reads its metadata only."""
        return self._epoch(read_metadata(self.checkpoint_path)) if self.has_checkpoint() else 0
