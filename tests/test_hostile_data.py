"""Hostile inputs to the data loaders (issue 16): each case is refused with one line that names
the problem (an ImprovedGANError; rc 1 through the CLI), and nothing the user had is changed.

The pickles that once crashed the process (an object-dtype array over raw bytes: numpy then
follows fake pointers, SIGSEGV) are loaded in a subprocess, so a regression fails those cases
instead of killing the test run."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import re
import signal
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli_error, write_idx

import improved_gan
from improved_gan.data import (
    CIFARFormatError,
    IDXFormatError,
    ImageFolderError,
    SemiSupervisedBatches,
    SVHNFormatError,
    balanced_labelled_subset,
    load_cifar10,
    load_idx_dataset,
    load_image_folder,
    load_svhn,
    load_synthetic,
    parse_idx,
    read_idx,
)
from improved_gan.data import datasets as ds
from improved_gan.data.cifar10 import parse_batch
from improved_gan.data.datasets import DataRootError
from improved_gan.errors import ImprovedGANError
from improved_gan.utils import images as images_module
from improved_gan.utils.images import decode_image, open_image, read_npz_images

hostile = pytest.mark.hostile


def cases(rows: list[tuple]) -> list:
    """Parameter rows whose first value, the case's name, is also its test id."""
    return [pytest.param(*row, id=row[0]) for row in rows]


# --- CIFAR-10: pickles built to crash numpy or run code --------------------------------------


class _Reduce:
    """Pickles as ``func(*args)`` followed by ``__setstate__(state)``: any object a hostile
    pickle can describe, written without building it here."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def _evil_dtype(code: str, fields=None, names=None, elsize=-1, flags=0) -> _Reduce:
    """A dtype whose pickled flags lie: flags 0 says "no Python objects inside" (so numpy copies
    raw bytes instead of unpickling a list), whatever the type really is."""
    return _Reduce(np.dtype, (code, False, True), (3, "|", None, names, fields, elsize, 1, flags))


def _raw_array(dtype, shape, raw: bytes) -> _Reduce:
    """numpy's own ``_reconstruct(ndarray, (0,), b'b')`` + ``__setstate__`` with raw bytes."""
    return _Reduce(np.zeros(1).__reduce__()[0], (np.ndarray, (0,), b"b"), (1, shape, dtype, False, raw))


def _batch(data=None, labels=None, protocol: int = 2) -> bytes:
    data = np.zeros((3, 3072), np.uint8) if data is None else data
    labels = [0, 1, 2] if labels is None else labels
    return pickle.dumps({b"data": data, b"labels": labels}, protocol=protocol)


def _frombuffer(dtype, shape) -> _Reduce:
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    return _Reduce(frombuffer, (bytearray(b"\x41" * 8 * int(np.prod(shape))), dtype, shape, "C"))


FAKE_POINTERS = b"\x41" * 24  # three "PyObject *" numpy would follow
CRASHING = {
    "cifar-object-dtype-labels-raw-bytes": _batch(labels=_raw_array(_evil_dtype("O8"), (3,), FAKE_POINTERS)),
    "cifar-object-dtype-data-raw-bytes": _batch(
        data=_raw_array(_evil_dtype("O8"), (1, 3072), b"\x41" * 8 * 3072)
    ),
    "cifar-structured-dtype-with-object-field": _batch(
        labels=_raw_array(
            _evil_dtype("V8", fields={"a": (np.dtype("O"), 0)}, names=("a",), elsize=8), (3,), FAKE_POINTERS
        )
    ),
    "cifar-void-dtype-data": _batch(data=_raw_array(_evil_dtype("V3072"), (3,), bytes(3 * 3072))),
    "cifar-string-dtype-labels": _batch(labels=_raw_array(_evil_dtype("U1"), (3,), bytes(12))),
    "cifar-frombuffer-object-dtype-protocol5": _batch(
        labels=_frombuffer(_evil_dtype("O8"), (3,)), protocol=5
    ),
    "cifar-dtype-flags-claim-objects-in-uint8": _batch(
        data=_raw_array(_evil_dtype("u1", flags=63), (3, 3072), bytes(3 * 3072))
    ),
    "cifar-array-bytes-shorter-than-shape": _batch(
        data=_raw_array(np.dtype("u1"), (1000, 3072), b"\x00" * 10)
    ),
    "cifar-array-shape-not-sizes": _batch(data=_raw_array(np.dtype("u1"), (-1, 3072), b"\x00")),
}


def _tarball(folder: Path, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


_CHILD = """
import json, sys
from pathlib import Path
from improved_gan.data.cifar10 import load_cifar10, parse_batch
from improved_gan.errors import ImprovedGANError
for case, kind, path in json.loads(sys.argv[1]):
    print(json.dumps([case, "started"]), flush=True)
    try:
        if kind == "batch":
            parse_batch(Path(path).read_bytes(), case)
        else:
            load_cifar10("test", data_dir=path, download=False)
        result = ["loaded", ""]
    except ImprovedGANError as exc:
        result = [type(exc).__name__, str(exc)]
    except Exception as exc:
        result = ["other:" + type(exc).__name__, str(exc)]
    print(json.dumps([case, *result]), flush=True)
"""


@pytest.fixture(scope="module")
def crashing_results(tmp_path_factory) -> dict[str, list[str]]:
    """Every crashing pickle, as a batch file and inside a tarball, loaded in one subprocess;
    case -> [exception type or "crashed (signal N)", message]."""
    root = tmp_path_factory.mktemp("evil")
    jobs = []
    for case, blob in CRASHING.items():
        (root / case).write_bytes(blob)
        jobs.append([case, "batch", str(root / case)])
        tar_root = root / f"{case}-tar"
        _tarball(tar_root / "cifar10", {"test_batch": blob})
        jobs.append([f"{case}-in-tarball", "tarball", str(tar_root)])
    env = {**os.environ, "PYTHONPATH": str(Path(improved_gan.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(jobs)], capture_output=True, text=True, env=env, timeout=120
    )
    results: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        case, *result = json.loads(line)
        results[case] = (
            result if result != ["started"] else [f"crashed (rc {proc.returncode})", proc.stderr[-300:]]
        )
    return results


@hostile
@pytest.mark.parametrize("where", ["batch-file", "in-tarball"])
@pytest.mark.parametrize("case", list(CRASHING))
def test_cifar_crashing_pickles_are_refused(crashing_results, case, where):
    key = case if where == "batch-file" else f"{case}-in-tarball"
    kind, message = crashing_results.get(key, ["never run (the subprocess died earlier)", ""])
    assert kind == "CIFARFormatError", (kind, message)
    assert "\n" not in message
    if "dtype" in case or "frombuffer" in case:
        assert "refusing an array of dtype" in message and "only plain number dtypes" in message
    else:
        assert "corrupt" in message


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


HARMLESS = {
    "cifar-os-system": lambda: _batch(data=_Exploit()),
    "cifar-codecs-encode-other-codec": lambda: _batch(
        data=_Reduce(__import__("codecs").encode, ("abc", "rot13"))
    ),
    "cifar-labels-huge-int": lambda: _batch(labels=[2**70, 0, 1]),
    "cifar-labels-negative": lambda: _batch(labels=[-1, 0, 1]),
    "cifar-labels-floats": lambda: _batch(labels=[0.5, 1.0, 2.0]),
    "cifar-labels-nested": lambda: _batch(labels=[[0], [1], [2]]),
    "cifar-labels-count-mismatch": lambda: _batch(labels=[0, 1]),
    "cifar-labels-self-referential": lambda: _self_referential(),
    "cifar-data-not-array": lambda: _batch(data=b"\x00" * 3072),
    "cifar-data-wrong-width": lambda: _batch(data=np.zeros((3, 100), np.uint8)),
    "cifar-data-float": lambda: _batch(data=np.zeros((3, 3072), np.float32)),
    "cifar-not-a-dict": lambda: pickle.dumps([1, 2, 3], protocol=2),
    "cifar-truncated-pickle": lambda: _batch()[:100],
    "cifar-garbage": lambda: b"\x80\x02garbage" * 10,
    "cifar-empty-file": lambda: b"",
}


def _self_referential() -> bytes:
    labels: list = [0, 1]
    labels.append(labels)
    return _batch(labels=labels)


@hostile
@pytest.mark.parametrize("case", list(HARMLESS))
def test_cifar_bad_batches_are_refused(case, capsys):
    with pytest.raises(CIFARFormatError) as err:
        parse_batch(HARMLESS[case](), case)
    assert str(err.value).startswith(case) and "\n" not in str(err.value)
    assert "pwned" not in capsys.readouterr().out


def _tar_with(folder: Path, info: tarfile.TarInfo, blob: bytes | None = None) -> None:
    folder.mkdir(parents=True)
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.addfile(info, io.BytesIO(blob) if blob is not None else None)


def _huge_member() -> tarfile.TarInfo:
    info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
    info.size = 1 << 40  # declared 1 TiB: refused from the header, never read
    return info


def _symlink_member() -> tarfile.TarInfo:
    info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return info


@hostile
@pytest.mark.parametrize(
    "case, make, expected",
    cases(
        [
            (
                "cifar-tar-member-declares-1-TiB",
                lambda d: _tar_with(d, _huge_member()),
                "more than a CIFAR-10 batch",
            ),
            ("cifar-tar-member-is-symlink", lambda d: _tar_with(d, _symlink_member()), "not a regular file"),
            (
                "cifar-tar-missing-member",
                lambda d: _tar_with(d, tarfile.TarInfo("other/file"), b""),
                "no cifar-10-batches-py/test_batch",
            ),
            (
                "cifar-tar-not-gzip",
                lambda d: _write(d / "cifar-10-python.tar.gz", b"plain text"),
                "corrupt or truncated",
            ),
            (
                "cifar-gzip-not-tar",
                lambda d: _write(d / "cifar-10-python.tar.gz", gzip.compress(b"x" * 2000)),
                "corrupt or truncated",
            ),
            (
                "cifar-folder-batch-is-directory",
                lambda d: (d / "cifar-10-batches-py" / "test_batch").mkdir(parents=True),
                "missing",
            ),
        ]
    ),
)
def test_cifar_hostile_archives_are_refused(tmp_path, case, make, expected):
    make(tmp_path / "cifar10")
    with pytest.raises(CIFARFormatError, match=expected) as err:
        load_cifar10("test", data_dir=tmp_path, download=False)
    assert "\n" not in str(err.value)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _python2_batch(n: int = 2) -> tuple[bytes, np.ndarray]:
    """A batch as the real release stores it: Python 2's cPickle, protocol 2, str -> bytes."""
    data = np.arange(n * 3072, dtype=np.uint64).astype(np.uint8).reshape(n, 3072)
    raw = data.tobytes()

    def s(text: bytes) -> bytes:
        return b"U" + bytes([len(text)]) + text

    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
        b"(K\x01K" + bytes([n]) + b"M\x00\x0c\x86cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R"
        b"(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
        b"T" + struct.pack("<I", len(raw)) + raw + b"tb"
    )
    blob = b"\x80\x02}(" + s(b"data") + array + s(b"labels") + b"](K\x03K\x07eu."
    return blob, data


def test_cifar_python2_batches_still_load():
    """Not hostile: the stand-ins read the release's own Python 2 pickles exactly."""
    blob, data = _python2_batch()
    images, labels = parse_batch(blob)
    np.testing.assert_array_equal(images.reshape(2, -1), data)
    assert labels.tolist() == [3, 7]


# --- IDX: headers whose sizes overflow, lie or explode ---------------------------------------


def _idx_header(dims: tuple[int, ...], code: int = 0x08) -> bytes:
    return b"\x00\x00" + bytes([code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def _gzip_bomb(mib: int) -> bytes:
    """``mib`` MiB of zeros as concatenated gzip members (a few KB on disk)."""
    return gzip.compress(_idx_header((1 << 20,))) + gzip.compress(bytes(1 << 20)) * mib


IDX_CASES = {
    # np.prod((65536,) * 4, int64) wraps to 0: the old size check passed, numpy then failed.
    "idx-dims-product-wraps-to-zero": (_idx_header((65536,) * 4), "more than 256 MiB"),
    # (2**32 - 1)² wraps to a negative int64: the old message showed negative byte counts.
    "idx-dims-product-wraps-negative": (_idx_header((2**32 - 1, 2**32 - 1)), "more than 256 MiB"),
    "idx-absurd-declared-size-truncated": (_idx_header((60000, 28, 28000)) + bytes(100), "more than 256 MiB"),
    "idx-too-many-dims": (_idx_header((1,) * 100) + b"\x00", "100 dimensions"),
    "idx-size-mismatch": (_idx_header((3, 28, 28)) + bytes(10), "header declares shape (3, 28, 28)"),
    "idx-zero-dims": (b"\x00\x00\x08\x00", "bad IDX magic"),
    "idx-unknown-dtype-code": (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "bad IDX magic"),
}


@hostile
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("case", list(IDX_CASES))
def test_idx_hostile_headers_are_refused(tmp_path, case, compress):
    data, expected = IDX_CASES[case]
    path = write_idx_bytes(tmp_path / ("x-idx3-ubyte" + ".gz" * compress), data, compress)
    with pytest.raises(IDXFormatError, match=expected.replace("(", r"\(").replace(")", r"\)")) as err:
        read_idx(path)
    assert "\n" not in str(err.value) and not re.search(r"\(-\d", str(err.value))  # no negative sizes


def write_idx_bytes(path: Path, data: bytes, compress: bool) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@hostile
def test_idx_gzip_bomb_is_refused_without_expanding(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(_gzip_bomb(300))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(IDXFormatError, match="decompresses to more than 256 MiB"):
        read_idx(path)


@hostile
def test_idx_overflowing_header_is_refused_through_the_cli(tmp_path, capsys):
    root = tmp_path / "root"
    write_idx(root / "mnist" / "train-images-idx3-ubyte.gz", np.zeros((1, 1), np.uint8))
    (root / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_header((65536,) * 4)))
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (root / "mnist" / name).write_bytes((ds.SHIPPED_DATA / "mnist" / name).read_bytes())
    before = (root / "mnist" / "train-images-idx3-ubyte.gz").read_bytes()
    argv = ["train", "mnist-fm", "--data-dir", str(root), "--run-dir", str(tmp_path / "run")]
    msg = cli_error(capsys, [*argv, "--quiet", "--epochs", "1", "--device", "cpu"])
    assert "train-images-idx3-ubyte.gz" in msg and "more than 256 MiB" in msg
    assert (root / "mnist" / "train-images-idx3-ubyte.gz").read_bytes() == before


@hostile
@pytest.mark.parametrize(
    "case, images, expected",
    cases(
        [
            (
                "idx-images-27x27",
                np.zeros((12, 27, 27), np.uint8),
                r"expected uint8 images of shape \(N, 28, 28\)",
            ),
            (
                "idx-images-are-labels",
                np.zeros(12, np.uint8),
                r"expected uint8 images of shape \(N, 28, 28\)",
            ),
            ("idx-images-too-few", np.zeros((11, 28, 28), np.uint8), "expected 12 images"),
        ]
    ),
)
def test_idx_mismatched_files_are_refused(tmp_path, monkeypatch, case, images, expected):
    from improved_gan.data.idx_files import IDX_DATASETS, IDXDataset, IDXFile

    base = IDX_DATASETS["mnist"]
    img, lab, _ = base.splits["test"]
    small = IDXDataset("mnist", "mnist", {"test": (IDXFile(img.name, ""), IDXFile(lab.name, ""), 12)}, ())
    monkeypatch.setitem(IDX_DATASETS, "mnist", small)
    write_idx(tmp_path / "mnist" / img.name, images)
    write_idx(tmp_path / "mnist" / lab.name, np.zeros(12, np.uint8))
    with pytest.raises(IDXFormatError, match=expected):
        load_idx_dataset("mnist", "test", data_dir=tmp_path, download=False)


# --- data roots: a named root that is missing or not a folder is an error, not a fallback ----


def _train_argv(tmp_path: Path, *extra: str) -> list[str]:
    run = ["--run-dir", str(tmp_path / "run"), "--quiet", "--epochs", "1", "--device", "cpu"]
    return ["train", "mnist-fm", *extra, *run]


@hostile
@pytest.mark.parametrize(
    "case",
    ["data-dir-missing", "data-dir-is-a-file", "data-dir-empty", "data-dir-dataset-folder-is-a-file"],
)
def test_cli_data_dir_must_be_a_folder(tmp_path, capsys, case):
    missing, afile, root = tmp_path / "nowhere", tmp_path / "afile", tmp_path / "root"
    afile.write_text("keep me")
    (root).mkdir()
    (root / "mnist").write_text("not a folder")
    data_dir, expected = {
        "data-dir-missing": (str(missing), f"--data-dir {missing} does not exist"),
        "data-dir-is-a-file": (str(afile), f"--data-dir {afile} is not a directory"),
        "data-dir-empty": ("", "--data-dir is empty"),
        "data-dir-dataset-folder-is-a-file": (str(root), f"{root / 'mnist'} is not a directory"),
    }[case]
    msg = cli_error(capsys, _train_argv(tmp_path, "--data-dir", data_dir))
    assert msg.startswith(expected) and "mnist/" in msg
    assert not missing.exists() and afile.read_text() == "keep me"


@hostile
@pytest.mark.parametrize("case", ["env-data-missing", "env-data-is-a-file"])
def test_cli_env_data_root_must_be_a_folder(tmp_path, capsys, monkeypatch, case):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    value = str(tmp_path / "nowhere") if case == "env-data-missing" else str(afile)
    monkeypatch.setenv("IMPROVED_GAN_DATA", value)
    msg = cli_error(capsys, _train_argv(tmp_path))
    what = "does not exist" if case == "env-data-missing" else "is not a directory"
    assert msg.startswith(f"IMPROVED_GAN_DATA={value} {what}")


@hostile
@pytest.mark.parametrize("dataset", ["mnist", "cifar10", "svhn", "imagefolder"])
def test_every_loader_refuses_a_missing_data_dir_before_downloading(tmp_path, monkeypatch, dataset):
    from improved_gan.data import load_images

    monkeypatch.setattr(
        "improved_gan.data.files.download_verified", lambda *a, **k: pytest.fail("downloaded")
    )
    monkeypatch.setattr(
        "improved_gan.data.datasets.download_verified", lambda *a, **k: pytest.fail("downloaded")
    )
    missing = tmp_path / "typo"
    with pytest.raises(DataRootError, match=f"--data-dir {missing} does not exist"):
        load_images(dataset, "test", missing)
    assert not missing.exists()  # nothing created where the user did not mean


@hostile
def test_data_dir_with_a_newline_is_named_on_one_line(tmp_path):
    weird = tmp_path / "a\nb"
    with pytest.raises(DataRootError) as err:
        load_idx_dataset("mnist", "test", data_dir=weird)
    assert "\n" not in str(err.value) and "a\\nb" in str(err.value)


# --- image folders: bombs, truncated files, pipes, a tampered cache --------------------------


def _png(width: int, height: int, payload: bytes = b"\x00") -> bytes:
    """A PNG whose header declares ``width`` × ``height`` RGB pixels over a tiny payload."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(payload))
        + chunk(b"IEND", b"")
    )


def _good_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


IMAGE_CASES = {
    "png-bomb-10-gigapixels": (_png(100_000, 100_000), "refused"),
    "png-bomb-just-over-the-limit": (_png(9000, 9000), "above the 67,108,864-pixel limit"),
    "png-truncated": (_good_png()[:40], "cannot be decoded|not a readable image"),
    "png-garbage": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "not a readable image"),
    "png-empty-file": (b"", "not a readable image"),
    "png-declares-more-than-it-holds": (_png(64, 64), "cannot be decoded"),
}


@hostile
@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_image_folder_refuses_hostile_images(tmp_path, case):
    data, expected = IMAGE_CASES[case]
    folder = tmp_path / "imagefolder" / "test" / "cls"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(_good_png())
    (folder / "b.png").write_bytes(data)
    with pytest.raises(ImageFolderError, match=expected) as err:
        load_image_folder("test", data_dir=tmp_path, image_size=8)
    assert "b.png" in str(err.value) and "\n" not in str(err.value)
    assert (folder / "b.png").read_bytes() == data


@hostile
@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_decode_image_refuses_hostile_images(tmp_path, case):
    data, _ = IMAGE_CASES[case]
    path = tmp_path / "x.png"
    path.write_bytes(data)
    with pytest.raises(ImprovedGANError) as err:
        decode_image(path, "RGB")
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def _alarm(seconds: int):
    """Fail instead of hanging if a pipe is ever opened for reading."""

    def handler(signum, frame):
        raise AssertionError("blocked reading a pipe")

    signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)


@hostile
@pytest.mark.parametrize("kind", ["fifo-named-png", "directory-named-png"])
def test_image_folder_passes_over_non_files(tmp_path, kind):
    folder = tmp_path / "imagefolder" / "test" / "cls"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(_good_png())
    os.mkfifo(folder / "b.png") if kind == "fifo-named-png" else (folder / "b.png").mkdir()
    _alarm(20)
    try:
        x, y = load_image_folder("test", data_dir=tmp_path, image_size=8)
    finally:
        signal.alarm(0)
    assert x.shape == (1, 3, 8, 8) and y.tolist() == [0]


@hostile
def test_open_image_refuses_a_pipe(tmp_path):
    os.mkfifo(tmp_path / "x.png")
    _alarm(20)
    try:
        with pytest.raises(ImprovedGANError, match="is not a regular file"):
            open_image(tmp_path / "x.png")
    finally:
        signal.alarm(0)


@hostile
@pytest.mark.parametrize("tamper", ["wrong-shape", "wrong-dtype", "labels-out-of-range", "garbage"])
def test_image_folder_tampered_cache_is_rebuilt(tmp_path, tamper):
    folder = tmp_path / "imagefolder" / "test" / "cls"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(_good_png())
    good, labels = load_image_folder("test", data_dir=tmp_path, image_size=8)
    (cache,) = (tmp_path / "cache" / "improved_gan" / "data" / "imagefolder").glob("*.npz")
    if tamper == "garbage":
        cache.write_bytes(b"PK\x03\x04 garbage")
    else:
        bad = {
            "wrong-shape": {"images": np.zeros((1, 3, 2, 2), np.uint8), "labels": labels},
            "wrong-dtype": {"images": good.astype(np.float32), "labels": labels},
            "labels-out-of-range": {"images": good, "labels": np.array([99])},
        }[tamper]
        np.savez(cache, **bad)
    x, y = load_image_folder("test", data_dir=tmp_path, image_size=8)
    np.testing.assert_array_equal(x, good)
    np.testing.assert_array_equal(y, labels)


@hostile
@pytest.mark.parametrize("size", [0, -3, 10**6, 2.5])
def test_image_folder_refuses_absurd_sizes(tmp_path, size):
    folder = tmp_path / "imagefolder" / "test" / "cls"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(_good_png())
    with pytest.raises(ImprovedGANError, match="image size must be an integer in 1..1024"):
        load_image_folder("test", data_dir=tmp_path, image_size=size)


# --- SVHN .mat files -------------------------------------------------------------------------


def _savemat(path: Path, **variables) -> Path:
    import scipy.io

    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), variables)
    return path


def _x(n: int = 3, dtype=np.uint8) -> np.ndarray:
    return np.zeros((32, 32, 3, n), dtype)


def _y(n: int = 3) -> np.ndarray:
    return np.arange(1, n + 1, dtype=np.uint8).reshape(n, 1)


def _declares_a_million_images(path: Path) -> None:
    """A real file whose X header is edited to declare (32, 32, 3, 1000000)."""
    _savemat(path, X=_x(), y=_y())
    data = bytearray(path.read_bytes())
    dims = struct.pack("<4i", 32, 32, 3, 3)
    at = data.index(dims)
    data[at : at + 16] = struct.pack("<4i", 32, 32, 3, 1_000_000)
    path.write_bytes(bytes(data))


def _matlab73(path: Path) -> None:
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + bytes(8) + b"\x00\x02IM"
    _write(path, header + b"\x89HDF\r\n\x1a\n" + bytes(64))


SVHN_CASES = {
    "svhn-garbage": (lambda p: _write(p, b"hello" * 100), "not a readable MATLAB file"),
    "svhn-empty-file": (lambda p: _write(p, b""), "not a readable MATLAB file"),
    "svhn-truncated": (
        lambda p: (_savemat(p, X=_x(), y=_y()), _write(p, p.read_bytes()[:300])),
        "not a readable MATLAB file",
    ),
    "svhn-matlab-7.3-hdf5": (_matlab73, "not a readable MATLAB file"),
    "svhn-missing-y": (lambda p: _savemat(p, X=_x()), "expected variables X and y"),
    "svhn-x-float": (lambda p: _savemat(p, X=_x(dtype=np.float64), y=_y()), r"X must be uint8 of shape"),
    "svhn-x-wrong-shape": (
        lambda p: _savemat(p, X=np.zeros((28, 28, 3), np.uint8), y=_y()),
        "X must be uint8",
    ),
    "svhn-x-sparse": (
        lambda p: _savemat(p, X=__import__("scipy.sparse").sparse.eye(4, format="csc"), y=_y()),
        "X must",
    ),
    "svhn-x-cell": (lambda p: _savemat(p, X=np.array([_x(), _x()], dtype=object), y=_y()), "X must be uint8"),
    "svhn-declares-a-million-images": (_declares_a_million_images, "declares 1,000,000 images"),
    "svhn-y-strings": (lambda p: _savemat(p, X=_x(), y="abc"), "y must hold 3 numbers"),
    "svhn-y-struct": (lambda p: _savemat(p, X=_x(), y={"a": 1}), "y must hold 3 numbers"),
    "svhn-y-count-mismatch": (lambda p: _savemat(p, X=_x(), y=_y(2)), "y must hold 3 numbers"),
    "svhn-y-nan": (lambda p: _savemat(p, X=_x(), y=np.array([[1.0], [np.nan], [2.0]])), "NaN"),
    "svhn-y-fractions": (lambda p: _savemat(p, X=_x(), y=np.array([[1.5], [2.0], [3.0]])), "fractions"),
    "svhn-y-out-of-range": (lambda p: _savemat(p, X=_x(), y=np.array([[1], [11], [3]])), "1..10"),
    "svhn-y-negative": (lambda p: _savemat(p, X=_x(), y=np.array([[1], [-4], [3]])), "1..10"),
    "svhn-file-is-a-directory": (lambda p: p.mkdir(parents=True), "not a readable MATLAB file"),
}


@hostile
@pytest.mark.parametrize("case", list(SVHN_CASES))
def test_svhn_hostile_mat_files_are_refused(tmp_path, case):
    make, expected = SVHN_CASES[case]
    path = tmp_path / "svhn" / "test_32x32.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)
    with pytest.raises(SVHNFormatError, match=expected) as err:
        load_svhn("test", data_dir=tmp_path, download=False)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# --- synthetic data and the batch streams ----------------------------------------------------


@hostile
@pytest.mark.parametrize(
    "case, shape, n, expected",
    cases(
        [
            ("synthetic-zero-side", (3, 0, 8), None, "a shape"),
            ("synthetic-huge-side", (3, 100_000, 100_000), None, "a shape"),
            ("synthetic-five-channels", (5, 8, 8), None, "a shape"),
            ("synthetic-two-dims", (8, 8), None, "a shape"),
            ("synthetic-float-side", (3, 8.5, 8), None, "a shape"),
            ("synthetic-negative-count", (3, 8, 8), -5, "integer >= 0"),
        ]
    ),
)
def test_synthetic_refuses_absurd_shapes(case, shape, n, expected):
    with pytest.raises(ImprovedGANError, match=expected):
        load_synthetic("train", shape, n)


def _streams(**overrides):
    args = {
        "x_lab": torch.zeros(10, 4),
        "y_lab": torch.zeros(10, dtype=torch.int64),
        "x_unl": torch.zeros(50, 4),
        "batch_size": 10,
        "tile": "floor",
    }
    args.update(overrides)
    return SemiSupervisedBatches(**args)


@hostile
@pytest.mark.parametrize(
    "case, overrides, expected",
    cases(
        [
            ("batches-batch-size-zero", {"batch_size": 0}, "batch_size must be an integer >= 1"),
            ("batches-batch-size-negative", {"batch_size": -10}, "batch_size must be an integer >= 1"),
            (
                "batches-labels-shorter-than-images",
                {"y_lab": torch.zeros(7, dtype=torch.int64)},
                "10 labelled images but 7",
            ),
            ("batches-unknown-tile", {"tile": "round"}, "tile must be"),
            ("batches-numpy-not-tensor", {"x_unl": np.zeros((50, 4))}, "x_unl must be a tensor"),
        ]
    ),
)
def test_batch_streams_refuse_bad_inputs(case, overrides, expected):
    with pytest.raises(ImprovedGANError, match=expected):
        _streams(**overrides)


@hostile
@pytest.mark.parametrize(
    "case, labels, per_class, seed, expected",
    cases(
        [
            ("subset-per-class-zero", np.arange(20) % 10, 0, 1, "labels per class must be an integer >= 1"),
            ("subset-negative-seed", np.arange(20) % 10, 1, -1, "seed_data must be an integer in 0..2"),
            ("subset-empty-labels", np.zeros(0, np.int64), 1, 1, "non-empty 1-D integer array"),
            ("subset-float-labels", np.full(20, 0.5), 1, 1, "non-empty 1-D integer array"),
        ]
    ),
)
def test_labelled_subset_refuses_bad_inputs(case, labels, per_class, seed, expected):
    with pytest.raises(ImprovedGANError, match=expected):
        balanced_labelled_subset(labels, per_class, seed)


# --- .npz image files ------------------------------------------------------------------------


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, blob in members.items():
            z.writestr(name, blob)
    return buf.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _npy_declaring(shape: tuple[int, ...]) -> bytes:
    header = repr({"descr": "|u1", "fortran_order": False, "shape": shape}).encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _patched_central_header(offset: int, value: int) -> bytes:
    """A valid .npz whose central directory entry has a 2-byte field at ``offset`` replaced."""
    data = bytearray(_npz(images=np.zeros((2, 4, 4), np.uint8)))
    at = data.index(b"PK\x01\x02") + offset
    data[at : at + 2] = struct.pack("<H", value)
    return bytes(data)


NPZ_CASES = {
    "npz-encrypted-member": (_patched_central_header(8, 0x1), "not a readable .npz file"),
    "npz-unknown-compression": (_patched_central_header(10, 99), "not a readable .npz file"),
    "npz-is-a-bare-npy": (_npy(np.zeros((2, 4, 4), np.uint8)), "is a .npy array, not an .npz archive"),
    "npz-truncated": (_npz(images=np.zeros((2, 4, 4), np.uint8))[:60], "not a readable .npz file"),
    "npz-garbage": (b"garbage" * 20, "not a readable .npz file"),
    "npz-empty-file": (b"", "not a readable .npz file"),
    "npz-zip-magic-then-junk": (b"PK\x03\x04" + b"\x00" * 60, "not a readable .npz file"),
    "npz-pickled-object-array": (
        _npz(images=np.array([{"a": 1}, None], dtype=object)),
        "not a readable .npz",
    ),
    "npz-member-not-npy": (_zip({"images": b"raw bytes, no npy header"}), "is not a numpy array"),
    "npz-declares-a-terabyte": (
        _zip({"images.npy": _npy_declaring((10**12,))}),
        "declares 1,000,000,000,000 bytes of data but holds",
    ),
    "npz-scores-strings": (
        _npz(images=np.zeros((2, 4, 4), np.uint8), scores=np.array(["a", "b"])),
        "not a readable .npz",
    ),
    "npz-scores-wrong-length": (
        _npz(images=np.zeros((2, 4, 4), np.uint8), scores=np.zeros(3)),
        r"'scores' must have shape \(2,\)",
    ),
    "npz-no-images-array": (_npz(a=np.zeros(2), b=np.zeros(2)), "none named 'images'"),
}


@hostile
@pytest.mark.parametrize("case", list(NPZ_CASES))
def test_npz_hostile_files_are_refused(tmp_path, case):
    data, expected = NPZ_CASES[case]
    path = tmp_path / "x.npz"
    path.write_bytes(data)
    with pytest.raises(ImprovedGANError, match=expected) as err:
        read_npz_images(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert path.read_bytes() == data


@hostile
def test_npz_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "x.npz"
    path.write_bytes(_npz(images=np.zeros((64, 32, 32), np.uint8)))
    monkeypatch.setattr(images_module, "MAX_NPZ_BYTES", 1024)
    with pytest.raises(ImprovedGANError, match="bytes uncompressed, above the"):
        read_npz_images(path)


@hostile
@pytest.mark.parametrize("case", ["npz-missing", "npz-is-a-directory"])
def test_npz_path_must_be_a_file(tmp_path, case):
    path = tmp_path / "x.npz"
    if case == "npz-is-a-directory":
        path.mkdir()
    with pytest.raises(
        ImprovedGANError, match="does not exist" if case == "npz-missing" else "not a regular file"
    ):
        read_npz_images(path)


@hostile
def test_parse_idx_is_never_fooled_by_int64_wraparound():
    """The exact arithmetic the old check got wrong, checked on its own."""
    with pytest.raises(IDXFormatError) as err:
        parse_idx(_idx_header((65536,) * 4), "f")
    assert f"({2**64 + 20:,} bytes" in str(err.value)


# --- utils' flat image folders (the score and Turing-test inputs) ----------------------------


def _flat_folder(tmp_path: Path, case: str) -> Path:
    folder = tmp_path / "samples"
    if case == "flat-folder-missing":
        return folder
    if case == "flat-folder-is-a-file":
        _write(folder, b"not a folder")
        return folder
    folder.mkdir()
    (folder / "a.png").write_bytes(_good_png())
    extra = {"flat-folder-png-bomb": _png(100_000, 100_000), "flat-folder-truncated-png": _good_png()[:40]}
    (folder / "b.png").write_bytes(extra[case])
    return folder


@hostile
@pytest.mark.parametrize(
    "case, expected",
    cases(
        [
            ("flat-folder-missing", "is not a folder of images"),
            ("flat-folder-is-a-file", "is not a folder of images"),
            ("flat-folder-png-bomb", "refused"),
            ("flat-folder-truncated-png", "not a readable image|cannot be decoded"),
        ]
    ),
)
def test_flat_image_folder_refuses_hostile_input(tmp_path, case, expected):
    from improved_gan.utils.images import ImageFolder

    folder = _flat_folder(tmp_path, case)
    with pytest.raises(ImprovedGANError, match=expected) as err:
        ImageFolder(folder).samples()
    assert "\n" not in str(err.value)
