"""The run directory: the only module that knows its files and the rule for resuming a run.

A run directory holds the resolved ``config.yaml``, ``metrics.jsonl`` (one JSON object per
epoch), TensorBoard events under ``tb/``, sample grids under ``samples/`` and
``checkpoints/last.safetensors`` (atomic, no pickle; :mod:`improved_gan.utils.checkpoint`).

Resuming: a run continues under its own settings, except those in the config's
:data:`~improved_gan.training.config.RUNTIME_GROUPS` (how long it runs, where it runs and reads
its data, what it logs, the speed options), which do not change what is computed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import yaml

from improved_gan.data.catalog import OWN_DATASETS
from improved_gan.data.own_data import own_data_classes
from improved_gan.errors import ImprovedGANError
from improved_gan.training.config import TrainConfig, validate_config
from improved_gan.utils.checkpoint import load_checkpoint, save_checkpoint

CONFIG = "config.yaml"
CLASSES = "classes.json"  # class names of a run on a user's own images (improved-gan predict prints them)
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoints/last.safetensors"
SAMPLES = "samples"
TENSORBOARD = "tb"


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
        if not self.config_path.is_file():
            raise ImprovedGANError(
                f"{self.path} is not a run directory (no {CONFIG}); train with `improved-gan train`"
            )
        return validate_config(yaml.safe_load(self.config_path.read_text()), str(self.config_path))

    def prepare(self, config: TrainConfig, resume: bool, write: bool = True) -> TrainConfig:
        """Check that ``config`` may start (or, with ``resume``, continue) this run, and write its
        ``config.yaml`` unless ``write`` is False (under torchrun rank 0 alone writes)."""
        if resume and self.has_checkpoint():
            old = self.read_config().model_dump()
            free = TrainConfig.runtime_fields()
            differing = [k for k, v in config.model_dump().items() if k not in free and old[k] != v]
            if differing:
                raise ImprovedGANError(
                    f"cannot resume {self.path}: the config differs in {', '.join(differing)}; resume with the "
                    f"same settings (only {', '.join(f for f in free if f not in ('run_dir', 'runs_root'))} "
                    "may change) or use another --run-dir"
                )
        elif self.has_checkpoint():
            raise ImprovedGANError(
                f"{self.path} already holds a run; pass --resume to continue it, or choose another --run-dir"
            )
        config = config.model_copy(update={"run_dir": str(self.path)})
        if write:
            self.path.mkdir(parents=True, exist_ok=True)
            _write_atomically(self.config_path, config.to_yaml())
            if config.dataset in OWN_DATASETS:
                names = own_data_classes(f"{config.dataset}:{config.data_dir}")
                _write_atomically(self.path / CLASSES, json.dumps(names, ensure_ascii=False) + "\n")
        return config

    # metrics.jsonl
    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]

    def append_metrics(self, record: dict) -> None:
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def keep_metrics_until(self, last_epoch: int) -> None:
        """Keep only the metrics lines of epochs ≤ ``last_epoch`` (those the checkpoint covers)."""
        if not self.metrics_path.exists():
            return
        kept = [r for r in self.read_metrics() if r["epoch"] <= last_epoch]
        _write_atomically(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    def clear_metrics(self) -> None:
        self.metrics_path.unlink(missing_ok=True)

    # checkpoints/last.safetensors
    def save_checkpoint(self, tensors: dict[str, torch.Tensor], epoch: int) -> None:
        save_checkpoint(self.checkpoint_path, tensors, {"epoch": str(epoch)})

    def load_checkpoint(self) -> tuple[dict[str, torch.Tensor], int]:
        """(tensors, the epoch it completes)."""
        tensors, metadata = load_checkpoint(self.checkpoint_path)
        return tensors, int(metadata["epoch"])

    def completed_epoch(self) -> int:
        """Epochs the checkpoint covers (0 without one)."""
        return self.load_checkpoint()[1] if self.has_checkpoint() else 0
