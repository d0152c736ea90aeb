"""Property-based fuzzing of every file `score` reads: random and mutated bytes of .npy and .npz
images, .npz reference statistics, image files in a folder, and the classifier checkpoint. Each
either loads into something valid or raises one-line ImprovedGANError; nothing else escapes."""

from __future__ import annotations

import functools
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.classifier import ARCHITECTURE, DatasetClassifier, load_classifier
from improved_gan.metrics.extractors import Extractor
from improved_gan.metrics.fid import load_statistics
from improved_gan.metrics.inputs import ImageSource, open_source
from improved_gan.metrics.score import open_reference
from improved_gan.utils.checkpoint import save_checkpoint

pytestmark = [pytest.mark.hostile, pytest.mark.usefixtures("one_thread")]

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
WORKDIR = Path(tempfile.mkdtemp(prefix="fuzz-score-"))


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz_bytes(compressed: bool = False, **arrays) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def image_bytes(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


_rng = np.random.RandomState(0)
IMAGE_ARRAYS = {
    "uint8": _rng.randint(0, 256, (6, 28, 28)).astype(np.uint8),
    "float": _rng.rand(5, 28, 28).astype(np.float32),
    "int16-nhwc": _rng.randint(0, 256, (3, 8, 8, 3)).astype(np.int16),
}
NPY_SEEDS = [npy_bytes(a) for a in IMAGE_ARRAYS.values()]
NPZ_SEEDS = [npz_bytes(images=a) for a in IMAGE_ARRAYS.values()] + [
    npz_bytes(True, x=IMAGE_ARRAYS["uint8"], labels=np.arange(6))
]
STATS_SEEDS = [
    npz_bytes(mu=np.zeros(128), sigma=np.eye(128), n=np.int64(50), extractor=np.str_("mnist")),
    npz_bytes(True, mu=np.ones(128), sigma=np.eye(128), features=_rng.rand(20, 128).astype(np.float32)),
]
IMAGE_SEEDS = {
    ".png": image_bytes(IMAGE_ARRAYS["uint8"][0], "PNG"),
    ".jpg": image_bytes(np.stack([IMAGE_ARRAYS["uint8"][1]] * 3, -1), "JPEG"),
    ".bmp": image_bytes(IMAGE_ARRAYS["uint8"][2], "BMP"),
}


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A seed with a few byte edits, cuts and insertions, mostly near its start (headers) and
    end (zip directories), or plain random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=512))
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        n = len(data)
        region = draw(st.sampled_from(["head", "tail", "any"]))
        lo, hi = {"head": (0, min(n, 256)), "tail": (max(0, n - 256), n), "any": (0, n)}[region]
        at = draw(st.integers(lo, max(lo, hi - 1)))
        edit = draw(st.sampled_from(["set", "set", "cut", "insert", "truncate"]))
        if edit == "set" and n:
            data[at] = draw(st.integers(0, 255))
        elif edit == "cut":
            del data[at : at + draw(st.integers(1, 16))]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "truncate":
            del data[at:]
    return bytes(data)


def write(name: str, data: bytes) -> Path:
    path = WORKDIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def loads_or_refuses(load: Callable[[], object]):
    """``load()``'s result, or None when it refused with a one-line ImprovedGANError."""
    try:
        return load()
    except ImprovedGANError as exc:
        assert "\n" not in str(exc), str(exc)
        return None


def read_all(source: ImageSource) -> None:
    """A valid source yields exactly ``count`` uint8 (B, C, H, W) images."""
    seen = 0
    for batch in source.batches(4):
        assert batch.dtype == torch.uint8 and batch.dim() == 4 and batch.shape[1] in (1, 3)
        seen += len(batch)
    assert seen == source.count >= 1


def score_file(path: Path) -> None:
    source = loads_or_refuses(lambda: open_source(path))
    if source is not None:
        loads_or_refuses(lambda: read_all(source))


@FUZZ
@given(mutated(NPY_SEEDS))
def test_fuzzed_npy_images(data):
    score_file(write("images.npy", data))


@FUZZ
@given(mutated(NPZ_SEEDS))
def test_fuzzed_npz_images(data):
    score_file(write("images.npz", data))


@FUZZ
@given(st.sampled_from(sorted(IMAGE_SEEDS)), st.data())
def test_fuzzed_image_files_in_a_folder(suffix, data):
    folder = WORKDIR / f"folder{suffix}"
    for old in folder.glob("*"):
        old.unlink()
    write(f"folder{suffix}/a{suffix}", data.draw(mutated([IMAGE_SEEDS[suffix]])))
    score_file(folder)


DTYPES = ["u1", "i1", ">i2", "u4", "i8", "f2", "f4", ">f8", "c8", "?", "U2", "S3", "M8[s]"]


@st.composite
def random_arrays(draw) -> dict[str, np.ndarray]:
    """A few arrays of any dtype and small shape, under the names the readers look for."""
    names = draw(
        st.lists(
            st.sampled_from(["images", "x", "arr_0", "mu", "sigma", "n", "features", "extractor", "other"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)
    return {name: draw(hnp.arrays(st.sampled_from(DTYPES), shapes)) for name in names}


@FUZZ
@given(random_arrays(), st.booleans())
def test_random_arrays_as_npz_images_and_references(arrays, compressed):
    path = write("arrays.npz", npz_bytes(compressed, **arrays))
    score_file(path)
    ref = loads_or_refuses(lambda: open_reference(path, MNIST_EXTRACTOR, need_features=True))
    if ref is not None and not isinstance(ref, dict):
        loads_or_refuses(lambda: read_all(ref))


@FUZZ
@given(hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=8)))
def test_random_arrays_as_npy_images(array):
    score_file(write("array.npy", npy_bytes(array)))


MNIST_EXTRACTOR = Extractor("mnist", DatasetClassifier().eval(), "untrained", 1, (28, 28), 100)


@FUZZ
@given(mutated(STATS_SEEDS))
def test_fuzzed_reference_statistics(data):
    path = write("reference.npz", data)
    stats = loads_or_refuses(lambda: load_statistics(path))
    if stats is not None:
        d = stats["mu"].shape[0]
        assert stats["sigma"].shape == (d, d) and np.isfinite(stats["sigma"]).all()
    ref = loads_or_refuses(lambda: open_reference(path, MNIST_EXTRACTOR, need_features=False))
    if isinstance(ref, dict):
        assert ref["mu"].shape == (128,) and np.isfinite(ref["mu"]).all()
    elif ref is not None:  # the mutation turned it into an .npz of images
        loads_or_refuses(lambda: read_all(ref))


@functools.cache
def classifier_seed() -> bytes:
    """A valid (untrained) classifier checkpoint's bytes."""
    torch.manual_seed(0)
    meta = {
        "dataset": "mnist",
        "architecture": ARCHITECTURE,
        "test_accuracy": "0.5",
        "epochs": "1",
        "seed": "0",
    }
    path = WORKDIR / "seed.safetensors"
    save_checkpoint(path, DatasetClassifier().state_dict(), meta)
    return path.read_bytes()


@settings(FUZZ, max_examples=100)
@given(st.data())
def test_fuzzed_classifier_checkpoint(data):
    path = write("classifier.safetensors", data.draw(mutated([classifier_seed()])))
    loaded = loads_or_refuses(lambda: load_classifier("mnist", path))
    if loaded is not None:
        model, info = loaded
        assert all(torch.isfinite(p).all() for p in model.state_dict().values() if p.is_floating_point())
        assert 0.0 <= info.test_accuracy <= 1.0
