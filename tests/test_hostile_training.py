"""Hostile inputs to training, run directories, configs and checkpoints (issue 16, training part).

Every refusal is one line naming the problem and the fix (``cli_error``), and leaves the user's
files as they were. One tiny run is trained per module; each test doctors a copy of it.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from conftest import cli_error, tiny_config
from pydantic import BaseModel

import improved_gan.training.loop as loop_module
import improved_gan.training.run_dir as run_dir_module
import improved_gan.utils.atomic as atomic_module
import improved_gan.utils.checkpoint as checkpoint_module
from improved_gan.cli import main
from improved_gan.errors import ImprovedGANError
from improved_gan.training import RunDir, evaluate_run, sample_from_run, train
from improved_gan.training.config import TrainConfig, validate_config
from improved_gan.training.run_dir import CHECKPOINT, CONFIG, METRICS
from improved_gan.utils.checkpoint import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A finished one-epoch tiny run (trained once per module)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("base")
    try:
        return train(tiny_config(root), progress=False)
    finally:
        torch.set_num_threads(threads)


def _copy(src: str, dst: str) -> None:
    """Hard-link the (large) checkpoint, copy the rest: the trainer and the doctors replace a
    checkpoint (temp file + rename) and never write into it."""
    (os.link if src.endswith(".safetensors") else shutil.copy2)(src, dst)


@pytest.fixture
def run(base_run, tmp_path) -> Path:
    """A copy of the base run at ``tmp_path / "run"`` (where ``tiny_config(tmp_path)`` points)."""
    base = base_run / CHECKPOINT
    stamp = base.stat().st_mtime_ns, base.stat().st_size
    yield Path(shutil.copytree(base_run, tmp_path / "run", copy_function=_copy))
    assert (base.stat().st_mtime_ns, base.stat().st_size) == stamp, "a test wrote into the shared checkpoint"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def config_file(tmp_path: Path, **overrides) -> str:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path, **overrides)))
    return str(path)


def resume_argv(tmp_path: Path, epochs: int = 2, **overrides) -> list[str]:
    return ["train", config_file(tmp_path, epochs=epochs, **overrides), "--resume", "--quiet"]


# --- 1 and 5: settings out of range (NaN, inf, negative, zero) -------------------------------

BAD_SETTINGS = {
    "lr-nan": (["--set", "lr=.nan"], "lr"),
    "lr-nan-string": (["--set", "lr=nan"], "lr"),
    "lr-inf": (["--set", "lr=.inf"], "lr"),
    "lr-minus-inf": (["--set", "lr=-.inf"], "lr"),
    "lr-zero": (["--set", "lr=0"], "lr must be a finite number > 0"),
    "lr-negative": (["--set", "lr=-0.1"], "lr must be a finite number > 0"),
    "unlabeled-weight-nan": (["--set", "unlabeled_weight=.nan"], "unlabeled_weight"),
    "unlabeled-weight-inf": (["--set", "unlabeled_weight=.inf"], "unlabeled_weight"),
    "unlabeled-weight-negative": (["--set", "unlabeled_weight=-1"], "unlabeled_weight must be"),
    "adam-eps-nan": (["--set", "adam_eps=.nan"], "adam_eps"),
    "adam-eps-zero": (["--set", "adam_eps=0"], "adam_eps must be"),
    "betas-nan": (["--set", "betas=[0.5, .nan]"], "betas.1"),
    "betas-inf": (["--set", "betas=[.inf, 0.999]"], "betas.0"),
    "ema-decay-nan": (["--set", "ema.decay=.nan"], "ema.decay"),
    "generator-target-inf": (["--set", "generator_target=.inf"], "generator_target"),
    "label-smoothing-nan": (["--set", "techniques.label_smoothing=.nan"], "label_smoothing"),
    "historical-averaging-inf": (["--set", "techniques.historical_averaging=.inf"], "historical_averaging"),
    "minibatch-weight-std-nan": (["--set", "techniques.minibatch_weight_std=.nan"], "minibatch_weight_std"),
    "conv-dropout-nan": (["--set", "conv.dropout=.nan"], "conv.dropout"),
    "conv-dropout-above-one": (["--set", "conv.dropout=1.5"], "conv.dropout"),
    "conv-input-noise-negative": (["--set", "conv.input_noise=-1"], "conv.input_noise"),
    "conv-lrelu-slope-inf": (["--set", "conv.lrelu_slope=.inf"], "conv.lrelu_slope"),
    "imagenet-input-noise-nan": (["--set", "imagenet.input_noise=.nan"], "imagenet.input_noise"),
    "threads-negative": (["--threads", "-1"], "threads must be"),
    "threads-zero": (["--threads", "0"], "threads must be"),
    "threads-huge": (["--threads", str(2**40)], "threads must be"),
    "seed-negative": (["--seed", "-1"], "seed must be an integer in [0, 2**32)"),
    "seed-2-pow-32": (["--seed", str(2**32)], "seed must be an integer in [0, 2**32)"),
    "seed-huge": (["--seed", str(10**30)], "seed must be"),
    "seed-data-negative": (["--seed-data", "-1"], "seed_data must be"),
    "seed-data-2-pow-32": (["--seed-data", str(2**32)], "seed_data must be"),
    "epochs-zero": (["--epochs", "0"], "epochs must be a positive integer"),
    "epochs-negative": (["--epochs", "-3"], "epochs must be a positive integer"),
    "labels-negative": (["--labels", "-10"], "labels must be a multiple of 10"),
    "labels-not-balanced": (["--labels", "7"], "labels must be a multiple of 10"),
    "labels-above-examples": (["--labels", "1000"], "exceeds the 300 training examples"),
    "max-train-examples-zero": (["--set", "max_train_examples=0"], "max_train_examples must be"),
    "max-train-examples-negative": (["--set", "max_train_examples=-5"], "max_train_examples must be"),
    "max-test-examples-zero": (["--set", "max_test_examples=0"], "max_test_examples must be"),
    "max-test-examples-negative": (["--set", "max_test_examples=-1"], "max_test_examples must be"),
    "batch-size-zero": (["--set", "batch_size=0"], "batch_size must be a positive integer"),
    "batch-size-negative": (["--set", "batch_size=-100"], "batch_size must be a positive integer"),
    "batch-size-above-examples": (["--set", "batch_size=1000"], "batch_size (1000) exceeds"),
    "init-examples-zero": (["--set", "init_examples=0"], "init_examples must be"),
    "g-steps-zero": (["--set", "g_steps=0"], "g_steps must be"),
    "num-classes-one": (["--set", "num_classes=1"], "num_classes must be at least 2"),
    "lr-decay-end-zero": (["--set", "lr_decay_start=0", "--set", "lr_decay_end=0"], "lr_decay_end must be"),
    "score-samples-tiny": (["--set", "score_samples=1"], "score_samples"),
    "score-every-negative": (["--set", "score_every=-1"], "score_every"),
    "lr-not-a-number": (["--set", "lr=fast"], "lr"),
    "epochs-not-an-integer": (["--set", "epochs=1.5"], "epochs"),
    "member-noise-unknown": (
        ["--set", "member_noise=bogus"],
        "member_noise: Input should be 'own' or 'shared'",
    ),
}


@pytest.mark.hostile
@pytest.mark.parametrize("args, expected", BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_bad_setting_is_refused_before_anything_is_written(tmp_path, capsys, args, expected):
    msg = cli_error(capsys, ["train", config_file(tmp_path), "--quiet", *args])
    assert expected in msg
    assert "; " in msg  # the problem, then the fix
    assert not (tmp_path / "run").exists()


def _float_fields(model=TrainConfig, prefix: str = "") -> list[str]:
    """Every float setting of the config (nested groups included), as a dotted path."""
    found = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found += _float_fields(kind, f"{prefix}{name}.")
        elif "float" in str(kind):
            found.append(prefix + name)
    return found


FLOAT_FIELDS = _float_fields()


@pytest.mark.hostile
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "minus-inf"])
@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_every_float_setting_refuses_nonfinite(tmp_path, field, value):
    """Not only lr and unlabeled_weight: a field added later gets the same refusal."""
    data = tiny_config(tmp_path)
    *groups, name = field.split(".")
    target = data
    for group in groups:
        target = target.setdefault(group, {})
    target[name] = [value, 0.999] if name == "betas" else value
    with pytest.raises(ImprovedGANError) as caught:
        validate_config(data)
    msg = str(caught.value)
    assert name in msg and "\n" not in msg and "; " in msg
    assert len(FLOAT_FIELDS) >= 14


# --- 4: config files (duplicate keys and other broken YAML) ----------------------------------

BAD_CONFIG_FILES = {
    "duplicate-key": (b"labels: 20\nlr: 0.1\nlr: 0.2\n", "duplicate key 'lr' at line 3"),
    "duplicate-nested-key": (b"ema:\n  decay: 0.9\n  decay: 0.99\n", "duplicate key 'decay' at line 3"),
    "duplicate-flow-key": (b"betas: [0.5, 0.9]\nema: {decay: 0.9, decay: 0.8}\n", "duplicate key 'decay'"),
    "alias": (b"a: &x [1, 2]\nbetas: *x\n", "aliases"),
    "syntax-error": (b"labels: [20\n", "not valid YAML"),
    "tab-indent": (b"ema:\n\tdecay: 0.9\n", "not valid YAML"),
    "not-a-mapping": (b"- 1\n- 2\n", "must be a YAML mapping"),
    "empty": (b"", "must be a YAML mapping"),
    "binary": (b"\xff\xfe\x00garbage\x80", "not UTF-8"),
    "deep-nesting": (b"a: " + b"[" * 20000, "not valid YAML"),
    "python-tag": (b"lr: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    "unknown-key": (b"learning_rate: 0.1\n", "unknown key"),
    "wrong-type": (b"labels: many\n", "labels"),
    "bad-base": (b"base: no-such-preset\n", "is not a preset"),
}


@pytest.mark.hostile
@pytest.mark.parametrize("content, expected", BAD_CONFIG_FILES.values(), ids=BAD_CONFIG_FILES.keys())
def test_bad_config_file_is_one_line(tmp_path, capsys, content, expected):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    msg = cli_error(capsys, ["train", str(path), "--quiet", "--run-dir", str(tmp_path / "run")])
    assert expected in msg and str(path) in msg
    assert path.read_bytes() == content and not (tmp_path / "run").exists()


BAD_SET_ITEMS = {
    "set-duplicate-key": ("ema={decay: 0.9, decay: 0.8}", "duplicate key"),
    "set-alias": ("betas=*x", "not valid YAML"),
    "set-bad-yaml": ("betas=[0.5", "not valid YAML"),
    "set-empty-key-part": ("ema..decay=0.9", "empty part"),
    "set-no-value": ("epochs", "expected key=value"),
}


@pytest.mark.hostile
@pytest.mark.parametrize("item, expected", BAD_SET_ITEMS.values(), ids=BAD_SET_ITEMS.keys())
def test_bad_set_item_is_one_line(tmp_path, capsys, item, expected):
    assert expected in cli_error(capsys, ["train", config_file(tmp_path), "--quiet", "--set", item])


@pytest.mark.hostile
def test_set_into_a_value_is_one_line(tmp_path, capsys):
    argv = ["train", config_file(tmp_path), "--quiet", "--set", "lr=1", "--set", "lr.x=2"]
    assert "lr is set to a value" in cli_error(capsys, argv)


# --- 2, 3, 11: doctored checkpoints -----------------------------------------------------------


def _retype(name, dtype):
    return lambda t, m: ({**t, name: t[name].to(dtype)}, m)


def _edit(fn):
    def doctor(t, m):
        t = dict(t)
        fn(t)
        return t, m

    return doctor


def _poke(name, value):
    def fn(t):
        t[name] = t[name].clone()
        t[name].view(-1)[0] = value

    return _edit(fn)


def _meta(**changes):
    def doctor(t, m):
        m = {**m, **changes}
        return t, {k: v for k, v in m.items() if v is not None}

    return doctor


TENSOR_DOCTORS = {
    "int64-weight": (_retype("D.output.weight_v", torch.int64), "D.output.weight_v is int64"),
    "float64-weight": (_retype("G.net.0.weight", torch.float64), "is float64"),
    "float16-ema": (_retype("ema.shadow.output.weight_v", torch.float16), "is float16"),
    "wrong-shape": (_edit(lambda t: t.update({"D.output.weight_v": t["D.output.weight_v"][:5]})), "(5, 250)"),
    "missing-D-tensor": (_edit(lambda t: t.pop("D.output.weight_v")), "lacks 1 tensors"),
    "missing-G-tensors": (_edit(lambda t: [t.pop(k) for k in list(t) if k.startswith("G.")]), "lacks"),
    "partial-optimizer-state": (_edit(lambda t: t.pop("opt_d.0.exp_avg")), "opt_d.0.exp_avg"),
    "missing-rng": (_edit(lambda t: t.pop("rng.torch")), "rng.torch"),
    "extra-D-tensor": (_edit(lambda t: t.update({"D.surprise": torch.zeros(3)})), "D.surprise"),
    "extra-unknown-tensor": (_edit(lambda t: t.update({"junk": torch.zeros(())})), "does not have (junk)"),
    "nan-D-weight": (_poke("D.output.weight_v", math.nan), "NaN or infinite values in 1 of"),
    "inf-G-weight": (_poke("G.net.0.weight", math.inf), "NaN or infinite values in 1 of"),
    "nan-ema-shadow": (_poke("ema.shadow.output.weight_v", math.nan), "NaN or infinite"),
    "nan-adam-state": (_poke("opt_g.0.exp_avg_sq", math.nan), "NaN or infinite"),
    "negative-ema-count": (_edit(lambda t: t.update({"ema.num_updates": torch.tensor(-5)})), "negative"),
    "short-rng-state": (
        _edit(lambda t: t.update({"rng.torch": t["rng.torch"][:100]})),
        "rng.torch is uint8 (100,)",
    ),
    "garbled-rng-state": (
        _edit(lambda t: t.update({"rng.data": torch.full_like(t["rng.data"], 7)})),
        "rng.data is not a valid random-generator state",
    ),
    "epoch-text": (_meta(epoch="abc"), "epoch 'abc' is not a positive whole number"),
    "epoch-zero": (_meta(epoch="0"), "epoch '0'"),
    "epoch-negative": (_meta(epoch="-1"), "epoch '-1'"),
    "epoch-float": (_meta(epoch="1.5"), "epoch '1.5'"),
    "epoch-huge": (_meta(epoch="9" * 40), "is not a positive whole number"),
    "epoch-unicode-digits": (_meta(epoch="١"), "is not a positive whole number"),
    "epoch-missing": (_meta(epoch=None), "epoch None"),
    "foreign-format": (_meta(format="someone-else/3"), "not an improved-gan checkpoint"),
}


BYTE_DOCTORS = {
    "truncated": (lambda b: b[: len(b) // 2], "unreadable"),
    "header-only": (lambda b: b[:100], "unreadable"),
    "empty-file": (lambda b: b"", "unreadable"),
    "garbage": (lambda b: os.urandom(5000), "unreadable"),
    "bad-header-length": (lambda b: (10**12).to_bytes(8, "little") + b[8:], "unreadable"),
    "garbled-header": (lambda b: b[:8] + b"{" * 50 + b[58:], "unreadable"),
}


def doctor_checkpoint(run: Path, case: str) -> None:
    path = run / CHECKPOINT
    if case in BYTE_DOCTORS:
        content = BYTE_DOCTORS[case][0](path.read_bytes())
        path.unlink()  # a hard link to the base run's checkpoint
        path.write_bytes(content)
        return
    if case == "checkpoint-is-a-directory":
        path.unlink()
        path.mkdir()
        return
    tensors, metadata = load_checkpoint(path)
    save_checkpoint(path, *TENSOR_DOCTORS[case][0](tensors, metadata))


CHECKPOINT_CASES = {
    **{k: v[1] for k, v in TENSOR_DOCTORS.items()},
    **{k: v[1] for k, v in BYTE_DOCTORS.items()},
}


def verb_argv(verb: str, tmp_path: Path, run: Path) -> list[str]:
    """The two commands that read a run directory: train --resume, and evaluate."""
    return resume_argv(tmp_path) if verb == "resume" else ["evaluate", str(run)]


@pytest.mark.hostile
@pytest.mark.parametrize("verb", ["resume", "evaluate"])
@pytest.mark.parametrize("case", CHECKPOINT_CASES, ids=CHECKPOINT_CASES)
def test_doctored_checkpoint_is_refused_and_nothing_changes(run, tmp_path, capsys, case, verb):
    doctor_checkpoint(run, case)
    before = snapshot(run)
    msg = cli_error(capsys, verb_argv(verb, tmp_path, run))
    assert CHECKPOINT_CASES[case] in msg and str(run / CHECKPOINT) in msg
    assert snapshot(run) == before


@pytest.mark.hostile
@pytest.mark.parametrize("verb", ["resume", "evaluate"])
def test_checkpoint_that_is_a_directory_is_refused(run, tmp_path, capsys, verb):
    doctor_checkpoint(run, "checkpoint-is-a-directory")
    assert f"{run / CHECKPOINT} is a directory" in cli_error(capsys, verb_argv(verb, tmp_path, run))


@pytest.mark.hostile
@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
def test_nonfinite_weights_are_refused_for_samples_and_test_errors(run, value):
    """score and turing sample a run through sample_from_run; evaluate through evaluate_run."""
    tensors, metadata = load_checkpoint(run / CHECKPOINT)
    tensors["G.net.0.weight"][0, 0] = value
    save_checkpoint(run / CHECKPOINT, tensors, metadata)
    for read in (lambda: sample_from_run(run, 10), lambda: evaluate_run(run)):
        with pytest.raises(ImprovedGANError, match=r"NaN or infinite values in 1 of its \d+ tensors"):
            read()


# --- 11: broken config.yaml in a run directory -----------------------------------------------

RUN_CONFIGS = {
    "config-missing": (None, "no config.yaml"),
    "config-syntax-error": (b"labels: [20\n", "not valid YAML"),
    "config-duplicate-key": (b"labels: 20\nlabels: 30\n", "duplicate key 'labels'"),
    "config-unknown-key": (b"labels: 20\nlearning_rate: 3\n", "unknown key"),
    "config-wrong-type": (b"labels: twenty\n", "labels"),
    "config-not-a-mapping": (b"just text\n", "must be a YAML mapping"),
    "config-empty": (b"", "must be a YAML mapping"),
    "config-binary": (b"\x89PNG\r\n\x1a\n\xff\xff", "not UTF-8"),
    "config-nan-lr": (b"labels: 20\nlr: .nan\n", "lr"),
}


def doctor_config(run: Path, case: str) -> None:
    content = RUN_CONFIGS[case][0]
    if content is None:
        (run / CONFIG).unlink()
    else:
        (run / CONFIG).write_bytes(content)


@pytest.mark.hostile
@pytest.mark.parametrize("verb", ["resume", "evaluate"])
@pytest.mark.parametrize("case", RUN_CONFIGS, ids=RUN_CONFIGS)
def test_broken_run_config_is_refused_and_nothing_changes(run, tmp_path, capsys, case, verb):
    doctor_config(run, case)
    before = snapshot(run)
    msg = cli_error(capsys, verb_argv(verb, tmp_path, run))
    assert RUN_CONFIGS[case][1] in msg and str(run) in msg
    assert snapshot(run) == before


# --- 11: metrics.jsonl: a partial last line, garbage lines -----------------------------------


def _first_line(run: Path) -> bytes:
    return (run / METRICS).read_bytes()


BAD_METRICS = {
    "metrics-not-json": (lambda first: first + b"{oops\n", "line 2: not valid JSON"),
    "metrics-json-array": (lambda first: b"[1, 2]\n" + first, "line 1: a JSON list, not an object"),
    "metrics-no-epoch": (lambda first: first + b'{"lr": 1}\n', "line 2: epoch None"),
    "metrics-epoch-string": (lambda first: first + b'{"epoch": "2"}\n', "line 2: epoch '2'"),
    "metrics-epoch-bool": (lambda first: first + b'{"epoch": true}\n', "line 2: epoch True"),
    "metrics-epoch-zero": (lambda first: first + b'{"epoch": 0}\n', "line 2: epoch 0"),
    "metrics-bad-utf8": (lambda first: b"\xff\xfe\xfa\n" + first, "line 1: not valid JSON"),
    "metrics-deep-nesting": (lambda first: first + b"[" * 100000 + b"\n", "line 2: not valid JSON"),
}


@pytest.mark.hostile
@pytest.mark.parametrize("case", BAD_METRICS, ids=BAD_METRICS)
def test_garbage_metrics_line_is_refused_on_resume(run, tmp_path, capsys, case):
    (run / METRICS).write_bytes(BAD_METRICS[case][0](_first_line(run)))
    before = snapshot(run)
    msg = cli_error(capsys, resume_argv(tmp_path))
    assert BAD_METRICS[case][1] in msg and str(run / METRICS) in msg and "delete that line" in msg
    assert snapshot(run) == before


@pytest.mark.hostile
@pytest.mark.parametrize("case", [*BAD_METRICS, "metrics-partial-line"])
def test_evaluate_does_not_read_metrics(run, capsys, case):
    first = _first_line(run)
    garbage = (
        first + b'{"epoch": 2, "lr": 0.0' if case == "metrics-partial-line" else BAD_METRICS[case][0](first)
    )
    (run / METRICS).write_bytes(garbage)
    assert main(["evaluate", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epoch"] == 1


@pytest.mark.hostile
def test_partial_last_metrics_line_is_dropped_on_resume_with_a_warning(run, tmp_path, capsys):
    first = _first_line(run)
    (run / METRICS).write_bytes(first + b'{"epoch": 2, "lr": 0.003, "loss_sup')  # killed mid-append
    assert RunDir(run).read_metrics() == [json.loads(first)]
    assert main(resume_argv(tmp_path)) == 0
    assert "partial line" in capsys.readouterr().err
    lines = (run / METRICS).read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2]
    assert lines[0] == first.decode().strip()


# --- 6: data loss: resume under another config, fresh train over a run ------------------------


@pytest.mark.hostile
def test_resume_without_checkpoint_under_another_config_is_refused(run, tmp_path, capsys):
    (run / CHECKPOINT).unlink()
    before = snapshot(run)
    msg = cli_error(capsys, resume_argv(tmp_path, lr=0.1))
    assert "differs in lr" in msg and "another --run-dir" in msg
    assert snapshot(run) == before


@pytest.mark.hostile
def test_resume_with_metrics_beyond_the_checkpoint_is_refused(run, tmp_path, capsys):
    """Metrics of 2 epochs and no checkpoint: resuming would restart at epoch 0 and drop them."""
    record = json.loads(_first_line(run))
    with (run / METRICS).open("a") as f:
        f.write(json.dumps({**record, "epoch": 2}) + "\n")
    (run / CHECKPOINT).unlink()
    before = snapshot(run)
    msg = cli_error(capsys, resume_argv(tmp_path, epochs=3))
    assert "records 2 epochs but checkpoints/last.safetensors covers 0" in msg
    assert snapshot(run) == before


@pytest.mark.hostile
def test_resume_with_one_metrics_line_beyond_the_checkpoint_continues(run, tmp_path):
    """A kill between the metrics append and the checkpoint save leaves one such line."""
    record = json.loads(_first_line(run))
    with (run / METRICS).open("a") as f:
        f.write(json.dumps({**record, "epoch": 2, "test_errors": -1}) + "\n")
    assert main(resume_argv(tmp_path)) == 0
    records = RunDir(run).read_metrics()
    assert [r["epoch"] for r in records] == [1, 2] and records[1]["test_errors"] >= 0


@pytest.mark.hostile
def test_resume_with_metrics_but_no_config_is_refused(run, tmp_path, capsys):
    """Without config.yaml the run's settings are unknown: resuming would restart and drop its metrics."""
    (run / CHECKPOINT).unlink()
    (run / CONFIG).unlink()
    before = snapshot(run)
    msg = cli_error(capsys, resume_argv(tmp_path, lr=0.1))
    assert f"holds {METRICS} but no {CONFIG}" in msg and "another --run-dir" in msg
    assert snapshot(run) == before


@pytest.mark.parametrize("state", ["missing", "empty", "empty-metrics"])
def test_resume_on_a_run_dir_without_a_run_starts_one(tmp_path, state):
    """--resume where there is no run yet (no directory, an empty one, empty metrics) starts a fresh one."""
    run = tmp_path / "run"
    if state != "missing":
        run.mkdir()
    if state == "empty-metrics":
        (run / METRICS).write_bytes(b"")
    assert main(resume_argv(tmp_path, epochs=1)) == 0
    assert [r["epoch"] for r in RunDir(run).read_metrics()] == [1] and RunDir(run).completed_epoch() == 1


def _foreign_config(run: Path) -> None:
    (run / CHECKPOINT).unlink()
    (run / METRICS).unlink()
    (run / CONFIG).write_text("hello: world\n")


FRESH_OVER = {
    "fresh-over-finished-run": lambda run: None,
    "fresh-over-metrics-without-checkpoint": lambda run: (run / CHECKPOINT).unlink(),
    "fresh-over-checkpoint-without-metrics": lambda run: (run / METRICS).unlink(),
    "fresh-over-foreign-config": _foreign_config,
}


@pytest.mark.hostile
@pytest.mark.parametrize("case", FRESH_OVER, ids=FRESH_OVER)
def test_fresh_train_never_destroys_a_run(run, tmp_path, capsys, case):
    FRESH_OVER[case](run)
    before = snapshot(run)
    msg = cli_error(capsys, ["train", config_file(tmp_path, lr=0.01), "--quiet"])
    assert "use --resume" in msg or "pass --resume" in msg or "not a run's config" in msg
    assert "another --run-dir" in msg
    assert snapshot(run) == before


def test_fresh_train_may_replace_a_run_that_saved_nothing(run, tmp_path):
    (run / CHECKPOINT).unlink()
    (run / METRICS).unlink()
    assert main(["train", config_file(tmp_path, lr=0.01), "--quiet"]) == 0
    assert RunDir(run).read_config().lr == 0.01 and RunDir(run).completed_epoch() == 1


# --- 7: the metrics rewrite on resume is atomic -----------------------------------------------


def _fail(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


class HalfWriter:
    """A file whose first write stores half its text, then fails: the disk filled up."""

    def __init__(self, f) -> None:
        self.f = f

    def write(self, text: str) -> int:
        self.f.write(text[: len(text) // 2])
        self.f.flush()
        _fail()

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


def os_with(**overrides):
    """The os module with some functions replaced, for one module only (others keep the real ones)."""
    return SimpleNamespace(**{**vars(os), **overrides})


@pytest.mark.hostile
@pytest.mark.parametrize("where", ["replace", "fsync", "write"])
def test_metrics_rewrite_failure_leaves_the_old_file(run, tmp_path, capsys, monkeypatch, where):
    first = _first_line(run)
    (run / METRICS).write_bytes(first + b'{"epoch": 2, "lr": 0.003}\n')  # one line to drop on resume
    before = snapshot(run)
    if where == "write":

        def half_open(path, mode="r", *args, **kwargs):
            f = open(path, mode, *args, **kwargs)
            return HalfWriter(f) if str(path).endswith(f"{METRICS}.tmp") else f

        monkeypatch.setattr(atomic_module, "open", half_open, raising=False)
    else:
        monkeypatch.setattr(atomic_module, "os", os_with(**{where: _fail}))
    msg = cli_error(capsys, resume_argv(tmp_path))
    monkeypatch.undo()
    assert f"cannot write {run / METRICS} (No space left on device)" in msg and "unchanged" in msg
    assert snapshot(run) == before


# --- 8 and 10: places that cannot be written --------------------------------------------------


def _file_at(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    path.write_text("my notes\n")


def _folder_at(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.mkdir(parents=True)
    (path / "inside").write_text("x")


UNWRITABLE = {
    "run-dir-is-a-file": (lambda d: _file_at(d), "is a file, not a directory", {}),
    "checkpoints-is-a-file": (lambda d: _file_at(d / "checkpoints"), "writes its checkpoints", {}),
    "samples-is-a-file": (lambda d: _file_at(d / "samples"), "writes its sample grids", {}),
    "tb-is-a-file": (lambda d: _file_at(d / "tb"), "writes its TensorBoard events", {"tensorboard": True}),
    "checkpoint-is-a-directory": (lambda d: _folder_at(d / CHECKPOINT), "is a directory", {}),
    "metrics-is-a-directory": (lambda d: _folder_at(d / METRICS), "is a directory", {}),
    "config-is-a-directory": (lambda d: _folder_at(d / CONFIG), "is a directory", {}),
}


@pytest.mark.hostile
@pytest.mark.parametrize("case", UNWRITABLE, ids=UNWRITABLE)
def test_unwritable_output_is_refused_before_training(tmp_path, capsys, case):
    make, expected, overrides = UNWRITABLE[case]
    run = tmp_path / "run"
    if case != "run-dir-is-a-file":
        run.mkdir()
    make(run)
    before = snapshot(tmp_path)
    msg = cli_error(capsys, ["train", config_file(tmp_path, **overrides), "--quiet"])
    assert expected in msg and "--run-dir" in msg
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not any(k.endswith((METRICS, ".safetensors", ".png")) for k in set(after) - set(before))


def _deny_writes_under(monkeypatch, folder: Path) -> None:
    """Simulate a read-only folder (tests run as root, who may write anywhere)."""
    real = run_dir_module.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == folder.resolve():
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(run_dir_module.tempfile, "mkstemp", mkstemp)


@pytest.mark.hostile
@pytest.mark.parametrize("folder", ["run", "run/checkpoints", "run/samples"])
def test_read_only_output_folder_is_refused_before_training(tmp_path, capsys, monkeypatch, folder):
    (tmp_path / folder).mkdir(parents=True)
    _deny_writes_under(monkeypatch, tmp_path / folder)
    msg = cli_error(capsys, ["train", config_file(tmp_path), "--quiet"])
    assert f"into {tmp_path / folder} (Permission denied)" in msg
    assert not (tmp_path / "run" / METRICS).exists() and not (tmp_path / "run" / CHECKPOINT).exists()


@pytest.mark.hostile
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_really_read_only_run_dir_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run").chmod(0o500)
    try:
        assert "Permission denied" in cli_error(capsys, ["train", config_file(tmp_path), "--quiet"])
    finally:
        (tmp_path / "run").chmod(0o700)


@pytest.mark.hostile
def test_disk_full_during_checkpoint_keeps_the_last_one_and_resume_recovers(
    run, tmp_path, capsys, monkeypatch
):
    before = (run / CHECKPOINT).read_bytes()
    monkeypatch.setattr(checkpoint_module, "save_file", lambda *a, **k: _fail())
    msg = cli_error(capsys, resume_argv(tmp_path))
    monkeypatch.undo()
    assert f"cannot write {run / CHECKPOINT} (No space left on device)" in msg
    assert "the checkpoint of epoch 1 is intact" in msg
    assert (run / CHECKPOINT).read_bytes() == before and not list(run.rglob("*.tmp"))
    assert main(resume_argv(tmp_path)) == 0  # the epoch-2 metrics line it left is redone
    assert [r["epoch"] for r in RunDir(run).read_metrics()] == [1, 2]


@pytest.mark.hostile
def test_disk_full_during_metrics_append_leaves_no_half_line(run, tmp_path, capsys, monkeypatch):
    before = snapshot(run)
    real_open = Path.open

    def full_open(self, mode="r", *args, **kwargs):
        f = real_open(self, mode, *args, **kwargs)
        return HalfWriter(f) if self.name == METRICS and "a" in mode else f

    monkeypatch.setattr(Path, "open", full_open)
    msg = cli_error(capsys, resume_argv(tmp_path))
    monkeypatch.undo()
    assert f"cannot write {run / METRICS} (No space left on device)" in msg
    assert snapshot(run)[METRICS] == before[METRICS] and snapshot(run)[CHECKPOINT] == before[CHECKPOINT]


@pytest.mark.hostile
def test_disk_full_during_sample_grid_leaves_no_half_png(run, tmp_path, capsys, monkeypatch):
    def half_png(images, path, rows=None):
        Path(path).write_bytes(b"\x89PNG\r\n")
        _fail()

    monkeypatch.setattr(run_dir_module, "save_grid", half_png)
    msg = cli_error(capsys, resume_argv(tmp_path))
    assert "epoch_0002.png (No space left on device)" in msg
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png"]


@pytest.mark.hostile
def test_disk_full_while_writing_config_leaves_the_old_one(run, tmp_path, capsys, monkeypatch):
    (run / CHECKPOINT).unlink()
    (run / METRICS).unlink()  # a run that saved nothing: a fresh train may replace its config
    before = snapshot(run)
    monkeypatch.setattr(atomic_module, "os", os_with(fsync=_fail))
    msg = cli_error(capsys, ["train", config_file(tmp_path, lr=0.01), "--quiet"])
    assert f"cannot write {run / CONFIG} (No space left on device)" in msg
    assert snapshot(run) == before


# --- 9: leftovers of killed writes ------------------------------------------------------------


@pytest.mark.hostile
@pytest.mark.parametrize("resume", [True, False], ids=["on-resume", "on-fresh-train"])
def test_stale_temp_files_are_removed_when_a_run_starts(run, tmp_path, resume):
    stale = ["checkpoints/last.safetensors.k1ll3d.tmp", "config.yaml.tmp", "metrics.jsonl.tmp"]
    stale += ["samples/.epoch_0002.tmp.png", ".write-test-abc.tmp"]
    if not resume:
        (run / CHECKPOINT).unlink()
        (run / METRICS).unlink()
    for name in stale:
        (run / name).write_bytes(b"half")
    (run / "notes.tmp").write_text("mine")
    argv = resume_argv(tmp_path, epochs=1) if resume else ["train", config_file(tmp_path), "--quiet"]
    assert main(argv) == 0
    assert not any((run / name).exists() for name in stale)
    assert (run / "notes.tmp").read_text() == "mine"


# --- 1: divergence and strict JSON metrics ----------------------------------------------------


@pytest.mark.hostile
def test_huge_lr_diverges_with_a_one_line_error(tmp_path, capsys):
    msg = cli_error(capsys, ["train", config_file(tmp_path), "--quiet", "--set", "lr=1e30"])
    assert "training diverged in epoch 1" in msg and "lower lr" in msg
    run = tmp_path / "run"
    assert not (run / CHECKPOINT).exists() and not (run / METRICS).exists()


@pytest.mark.hostile
def test_nan_losses_stop_the_run_and_keep_the_last_good_epoch(run, tmp_path, capsys, monkeypatch):
    real = loop_module.train_epoch

    def diverging(*args, **kwargs):
        return {**real(*args, **kwargs), "loss_generator": math.nan}

    monkeypatch.setattr(loop_module, "train_epoch", diverging)
    before = snapshot(run)
    msg = cli_error(capsys, resume_argv(tmp_path, epochs=3))
    assert "training diverged in epoch 2: loss_generator became NaN or infinite" in msg
    assert "checkpoint and metrics of epoch 1" in msg
    after = snapshot(run)
    assert after[CHECKPOINT] == before[CHECKPOINT] and after[METRICS] == before[METRICS]


@pytest.mark.hostile
def test_metrics_are_strict_json(tmp_path):
    run = RunDir(tmp_path)
    run.append_metrics({"epoch": 1, "fm_dead_share": math.nan, "scores": [math.inf, 1.0], "x": -math.inf})
    line = (tmp_path / METRICS).read_text()

    def no_constants(name):
        raise AssertionError(f"{name} in metrics.jsonl")

    assert json.loads(line, parse_constant=no_constants) == {
        "epoch": 1,
        "fm_dead_share": None,
        "scores": [None, 1.0],
        "x": None,
    }
