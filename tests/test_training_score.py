"""The trainer's periodic dataset score (config ``score_every``): logged when a classifier is
cached, skipped with one warning when not, and never changing what is trained."""

import json
import warnings

import numpy as np
import pytest
import torch
from conftest import tiny_config
from test_scoring import cache_random_classifier

pytestmark = pytest.mark.usefixtures("one_thread")


def _read_metrics(run):
    return [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]


def test_trainer_logs_the_dataset_score_without_changing_training(tmp_path):
    from improved_gan.metrics import dataset_score
    from improved_gan.training import train
    from improved_gan.training.run_dir import CHECKPOINT
    from improved_gan.utils.checkpoint import load_checkpoint

    dataset_score._warned.clear()
    common = dict(epochs=2, sample_grid=False, threads=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain = train(tiny_config(tmp_path / "a", score_every=1, score_samples=100, **common), progress=False)
    assert "dataset_score" not in _read_metrics(plain)[0]  # no classifier cached: skipped...
    assert sum("score_every is set" in str(w.message) for w in caught) == 1  # ...with one warning

    cache_random_classifier()
    scored = train(tiny_config(tmp_path / "b", score_every=2, score_samples=100, **common), progress=False)
    records = _read_metrics(scored)
    assert "dataset_score" not in records[0]
    assert records[1]["dataset_score"] >= 1.0 and records[1]["dataset_fid"] >= 0
    a, b = load_checkpoint(plain / CHECKPOINT)[0], load_checkpoint(scored / CHECKPOINT)[0]
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith(("G.", "D.")))


def test_sample_generator_maps_the_generator_output_range_to_uint8() -> None:
    """A tanh generator's 0 is mid-grey; a sigmoid generator's 0 is black."""
    from improved_gan.metrics import sample_generator

    class Zero(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def sample_noise(self, n: int, generator=None) -> torch.Tensor:
            return torch.rand(n, 3, generator=generator)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.zeros(z.shape[0], 784) * self.w

    tanh = sample_generator(Zero(), 7, value_range=(-1.0, 1.0), batch_size=5)
    sigmoid = sample_generator(Zero(), 7, batch_size=5)
    assert tanh.shape == sigmoid.shape == (7, 28, 28) and tanh.dtype == np.uint8
    assert (tanh == 128).all() and (sigmoid == 0).all()
