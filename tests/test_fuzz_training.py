"""Property-based fuzzing of what training reads back: YAML configs (files, ``--set`` items and a
run's ``config.yaml``), checkpoints and ``metrics.jsonl``. Random bytes, and valid files with bytes
flipped, cut or inserted, either load validly or raise :class:`ImprovedGANError` (one line);
never any other exception. And whatever numbers an epoch records, its metrics line is strict JSON
that reads back."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_config
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_data import FUZZ, hostile, loads_or_refuses

from improved_gan.errors import ImprovedGANError
from improved_gan.training import RunDir
from improved_gan.training.config import load_config, parse_set_overrides
from improved_gan.training.run_dir import CHECKPOINT, CONFIG, METRICS, metrics_line
from improved_gan.utils.checkpoint import check_layout, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


# --- YAML configs ----------------------------------------------------------------------------

CONFIG_YAML = yaml.safe_dump(
    {**tiny_config(Path("/nonexistent")), "lr": 0.003, "ema": {"decay": 0.999}}
).encode()


@FUZZ
@given(data=hostile(CONFIG_YAML))
def test_fuzz_config_file(tmp_path, data):
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    loads_or_refuses(lambda: load_config(str(path)))


@FUZZ
@given(data=hostile(CONFIG_YAML))
def test_fuzz_run_config(tmp_path, data):
    (tmp_path / CONFIG).write_bytes(data)
    loads_or_refuses(lambda: RunDir(tmp_path).read_config())


SET_ITEMS = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.builds(
            "{}={}".format,
            st.sampled_from(["lr", "betas", "ema.decay", "ema", "labels", "techniques.label_smoothing", ""]),
            st.text(max_size=30),
        ),
    ),
    max_size=3,
)


@FUZZ
@given(items=SET_ITEMS)
def test_fuzz_set_items(tmp_path, items):
    path = tmp_path / "tiny.yaml"
    path.write_bytes(CONFIG_YAML)
    loads_or_refuses(lambda: parse_set_overrides(items))
    loads_or_refuses(lambda: load_config(str(path), set_items=items))


# --- checkpoints -----------------------------------------------------------------------------


def _small_checkpoint() -> tuple[bytes, dict[str, tuple[torch.dtype, tuple[int, ...]]]]:
    """A small checkpoint in the real format (safetensors with our metadata) and its layout."""
    tensors = {
        "D.w": torch.randn(4, 3, generator=torch.Generator().manual_seed(0)),
        "ema.num_updates": torch.tensor(3),
        "rng.torch": torch.Generator().manual_seed(1).get_state(),
    }
    layout = {k: (v.dtype, tuple(v.shape)) for k, v in tensors.items()}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "small.safetensors"
        save_checkpoint(path, tensors, {"epoch": "2"})
        return path.read_bytes(), layout


CHECKPOINT_BYTES, LAYOUT = _small_checkpoint()


@FUZZ
@given(data=hostile(CHECKPOINT_BYTES, magic=CHECKPOINT_BYTES[:8]))
def test_fuzz_checkpoint(tmp_path, data):
    path = tmp_path / CHECKPOINT
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)

    def load() -> None:
        tensors, epoch = RunDir(tmp_path).load_checkpoint()
        assert epoch >= 1
        check_layout(path, tensors, LAYOUT)

    loads_or_refuses(load)
    loads_or_refuses(lambda: RunDir(tmp_path).completed_epoch())


def test_fuzz_checkpoint_baseline_loads(tmp_path):
    """The unmutated checkpoint passes every check (so the fuzz above is not vacuous)."""
    path = tmp_path / "ok.safetensors"
    path.write_bytes(CHECKPOINT_BYTES)
    tensors, metadata = load_checkpoint(path)
    check_layout(path, tensors, LAYOUT)
    assert metadata["epoch"] == "2"


# --- metrics.jsonl ---------------------------------------------------------------------------

METRICS_BYTES = b"".join(
    metrics_line({"epoch": e, "lr": 0.003, "loss_supervised": 1.5 / e, "test_errors": 100 - e}).encode()
    for e in (1, 2, 3)
)


@FUZZ
@given(data=hostile(METRICS_BYTES, magic=b'{"epoch": '))
def test_fuzz_metrics(tmp_path, data):
    (tmp_path / METRICS).write_bytes(data)
    run = RunDir(tmp_path)
    loads_or_refuses(run.read_metrics)

    def rewrite() -> None:
        run.keep_metrics_until(2)
        assert all(r["epoch"] <= 2 for r in run.read_metrics())  # what the rewrite kept reads back

    loads_or_refuses(rewrite)


NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70))
VALUES = st.recursive(
    st.one_of(NUMBERS, st.none(), st.booleans(), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(epoch=st.integers(1, 10**6), fields=st.dictionaries(st.text(max_size=12), VALUES, max_size=5))
def test_fuzz_metrics_lines_are_strict_json(tmp_path, epoch, fields):
    record = {**fields, "epoch": epoch}
    line = metrics_line(record)

    def no_constants(name):
        raise AssertionError(f"{name} in a metrics line")

    assert line.endswith("\n") and "\n" not in line[:-1]
    parsed = json.loads(line, parse_constant=no_constants)
    assert parsed["epoch"] == epoch
    (tmp_path / METRICS).unlink(missing_ok=True)
    RunDir(tmp_path).append_metrics(record)
    assert RunDir(tmp_path).read_metrics() == [parsed]


def test_metrics_line_writes_nonfinite_as_null():
    assert json.loads(metrics_line({"epoch": 1, "a": math.nan, "b": [math.inf]})) == {
        "epoch": 1,
        "a": None,
        "b": [None],
    }


def test_fuzz_baselines_load(tmp_path):
    """The unmutated config and metrics load (so the fuzz above is not vacuous)."""
    path = tmp_path / "tiny.yaml"
    path.write_bytes(CONFIG_YAML)
    assert load_config(str(path), set_items=["lr=0.01"]).lr == 0.01
    (tmp_path / METRICS).write_bytes(METRICS_BYTES)
    assert [r["epoch"] for r in RunDir(tmp_path).read_metrics()] == [1, 2, 3]
    with pytest.raises(ImprovedGANError):
        parse_set_overrides(["lr"])
