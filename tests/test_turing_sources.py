"""Image sources of the visual Turing test: folders, .npz, datasets, run directories; one PNG format."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from turing_support import make_study

from improved_gan.errors import ImprovedGANError
from improved_gan.evaluation import create_app, image_sources, prepare_study
from improved_gan.evaluation.image_sources import (
    ImageSet,
    encode_png,
    harmonise,
    load_source,
    parse_fake_spec,
)
from improved_gan.evaluation.study_db import StudyDB


def png_chunks(data: bytes) -> list[str]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunks.append(kind.decode())
        pos += 12 + length
    return chunks


def test_folder_npz_and_dataset_give_uint8_arrays(tmp_path, monkeypatch):
    folder = tmp_path / "imgs"
    folder.mkdir()
    pixels = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    Image.fromarray(pixels).save(folder / "b.png")
    Image.fromarray(np.stack([pixels] * 3, -1)).save(folder / "a.jpg", quality=95)
    (folder / "notes.txt").write_text("ignored")
    images = load_source(str(folder), "real", 10, 0, fake=False).images
    assert images.shape == (2, 28, 28, 3) and images.dtype == np.uint8  # one colour image: all colour
    assert np.array_equal(images[1][..., 0], pixels)  # sorted by name: a.jpg, b.png

    np.savez(tmp_path / "x.npz", images=np.zeros((5, 28, 28, 1), np.uint8))
    assert load_source(str(tmp_path / "x.npz"), "g", 10, 0, fake=True).images.shape == (5, 28, 28)

    calls = []

    def load_idx_dataset(name, split):
        calls.append((name, split))
        return np.full((100, 28, 28), 7, np.uint8), np.zeros(100, np.int64)

    monkeypatch.setattr(image_sources, "load_idx_dataset", load_idx_dataset)
    subset = load_source("mnist", "real", 20, 3, fake=False)
    assert calls == [("mnist", "test")] and subset.images.shape == (20, 28, 28)
    assert len(set(subset.indices.tolist())) == 20  # a random subset without repeats


def test_run_directory_is_sampled_with_the_seed(tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("preset: test\n")
    calls = []

    def sample_from_run(run_dir, n, seed):
        calls.append((str(run_dir), n, seed))
        return np.zeros((n, 28, 28), np.uint8)

    monkeypatch.setattr(image_sources, "sample_from_run", sample_from_run)
    images = load_source(str(run), "run", 12, 5, fake=True)
    assert calls == [(str(run), 12, 5)] and images.images.shape == (12, 28, 28)


def test_bad_sources_are_refused_with_a_hint(tmp_path):
    np.savez(tmp_path / "f.npz", images=np.zeros((3, 28, 28), np.float32))
    np.savez(tmp_path / "k.npz", pictures=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3))
    with pytest.raises(ImprovedGANError, match="uint8"):
        load_source(str(tmp_path / "f.npz"), "g", 10, 0, fake=True)
    with pytest.raises(ImprovedGANError, match="'images'"):
        load_source(str(tmp_path / "k.npz"), "g", 10, 0, fake=True)
    with pytest.raises(ImprovedGANError, match="not a folder of images"):
        load_source("cifar-100", "real", 10, 0, fake=False)
    with pytest.raises(ImprovedGANError, match="same size"):
        harmonise(
            [
                ImageSet("real", "r", np.zeros((2, 28, 28), np.uint8)),
                ImageSet("g", "g", np.zeros((2, 32, 32), np.uint8)),
            ]
        )
    colour = harmonise(
        [
            ImageSet("real", "r", np.zeros((2, 28, 28), np.uint8)),
            ImageSet("g", "g", np.zeros((2, 28, 28, 3), np.uint8)),
        ]
    )
    assert [s.images.shape for s in colour] == [(2, 28, 28, 3)] * 2


def test_fake_names_default_to_the_file_or_folder_name(tmp_path):
    assert parse_fake_spec("runs/mb-seed1") == ("mb-seed1", "runs/mb-seed1")
    assert parse_fake_spec("samples/fm.npz") == ("fm", "samples/fm.npz")
    assert parse_fake_spec("MB=runs/x") == ("MB", "runs/x")
    with pytest.raises(ImprovedGANError, match="model names"):
        parse_fake_spec("a b=runs/x")


def test_png_bytes_depend_on_the_pixels_only(tmp_path):
    """The same pixels, once a real PNG with metadata and once a generated .npz, serve the same bytes."""
    pixels = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    folder = tmp_path / "real"
    folder.mkdir()
    info = PngImagePlugin.PngInfo()
    info.add_text("Source", "the real data set")
    Image.fromarray(pixels).save(folder / "real_0001.png", pnginfo=info, compress_level=1)
    Image.fromarray(pixels[::-1]).save(folder / "real_0002.png")
    np.savez(tmp_path / "gen.npz", images=np.stack([pixels, pixels[:, ::-1]]))
    db = prepare_study(tmp_path / "s.sqlite", str(folder), [str(tmp_path / "gen.npz")])
    rows = db.connection().execute("SELECT source, source_index, png FROM images ORDER BY id").fetchall()
    db.close()
    by_key = {(s, i): png for s, i, png in rows}
    assert by_key[("real", 0)] == by_key[("gen", 0)] == encode_png(pixels)
    for png in by_key.values():
        assert png_chunks(png) == ["IHDR", "IDAT", "IEND"]
        assert Image.open(io.BytesIO(png)).size == (28, 28)
    assert b"real" not in by_key[("real", 0)] and b"Source" not in by_key[("real", 0)]


def test_a_study_restarts_only_with_the_same_sources(tmp_path):
    db_path = make_study(tmp_path, n=10)
    real, fakes = str(tmp_path / "real.npz"), [str(tmp_path / "model0.npz"), str(tmp_path / "model1.npz")]
    prepare_study(db_path, real, fakes, images_per_source=10).close()  # same command: continues
    prepare_study(db_path, None).close()  # no sources: continues
    with pytest.raises(ImprovedGANError, match="already holds a study"):
        prepare_study(db_path, real, fakes[:1], images_per_source=10)
    with pytest.raises(ImprovedGANError, match="needs --real and at least one --fake"):
        prepare_study(tmp_path / "new.sqlite", real, [])
    with pytest.raises(ImprovedGANError, match="distinct"):
        prepare_study(tmp_path / "dup.sqlite", real, [f"a={fakes[0]}", f"a={fakes[1]}"])


def test_too_few_images_for_the_session_length_is_an_error(tmp_path):
    db_path = make_study(tmp_path, n=10, models=2)
    with pytest.raises(ImprovedGANError, match="lower --per-rater"):
        create_app(db_path, per_rater=24)  # 12 real needed, 10 stored
    create_app(StudyDB(db_path), per_rater=20)
