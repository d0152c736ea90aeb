"""What users hand to `score`: tensors in every range and layout, folders, .npz/.npy, run
directories and dataset names, all turned into uint8 (N, C, H, W)."""

import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

from improved_gan.errors import ImprovedGANError
from improved_gan.metrics.inputs import open_source
from improved_gan.utils.images import to_uint8_nchw

pytestmark = pytest.mark.usefixtures("one_thread")


def test_float_ranges_are_detected_and_rounded():
    x01 = torch.tensor([0.0, 0.5, 1.0, 1 / 255 * 0.6]).reshape(1, 1, 2, 2)
    assert to_uint8_nchw(x01).flatten().tolist() == [0, 128, 255, 1]  # rounding, not truncation
    xpm = torch.tensor([-1.0, 0.0, 1.0, -0.999]).reshape(1, 1, 2, 2)
    assert to_uint8_nchw(xpm).flatten().tolist() == [0, 128, 255, 0]
    # an all-non-negative [-1, 1] batch is ambiguous: auto reads [0, 1], explicit range fixes it
    bright = torch.tensor([0.0, 1.0]).reshape(1, 1, 1, 2)
    assert to_uint8_nchw(bright).flatten().tolist() == [0, 255]
    assert to_uint8_nchw(bright, "-1,1").flatten().tolist() == [128, 255]


def test_uint8_and_layouts():
    u = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    out = to_uint8_nchw(u)
    assert out.shape == (5, 1, 28, 28) and torch.equal(out[:, 0], u)
    assert to_uint8_nchw(u.reshape(5, 784)).shape == (5, 1, 28, 28)
    nhwc = np.random.RandomState(0).randint(0, 256, (2, 8, 9, 3)).astype(np.uint8)
    assert torch.equal(to_uint8_nchw(nhwc), torch.from_numpy(nhwc).permute(0, 3, 1, 2))
    assert to_uint8_nchw(torch.zeros(2, 3, 4, 4, dtype=torch.int64)).dtype == torch.uint8


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.full((1, 1, 2, 2), 3.0), "outside"),
        (torch.full((1, 1, 2, 2), -2.0), "outside"),
        (torch.full((1, 1, 2, 2), float("nan")), "NaN"),
        (torch.zeros(2, 5, 4, 4), "shape"),
        (torch.zeros(2, 10), "square"),
        (torch.full((1, 1, 2, 2), 300), r"\[0, 255\]"),
    ],
)
def test_bad_images_are_clear_errors(bad, match):
    with pytest.raises(ImprovedGANError, match=match):
        to_uint8_nchw(bad)


def test_folder_of_pngs_is_read_in_name_order(tmp_path):
    images = np.random.RandomState(1).randint(0, 256, (5, 28, 28)).astype(np.uint8)
    for i, img in enumerate(images):
        Image.fromarray(img).save(tmp_path / f"{i:03d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(tmp_path)
    assert source.count == 5
    got = torch.cat(list(source.batches(2)))
    assert torch.equal(got[:, 0], torch.from_numpy(images))
    assert open_source(tmp_path, n=3).count == 3
    with pytest.raises(ImprovedGANError, match="fewer than"):
        open_source(tmp_path, n=6)


def test_colour_folder_and_mixed_sizes(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(ImprovedGANError, match=r"different sizes \[\(8, 8\), \(8, 9\)\]"):
        open_source(tmp_path)  # refused before any image is decoded
    (tmp_path / "b.png").unlink()
    Image.fromarray(np.full((8, 8), 9, np.uint8)).save(tmp_path / "c.png")  # grey beside colour: RGB
    batch = next(open_source(tmp_path).batches(2))
    assert batch.shape == (2, 3, 8, 8) and (batch[1] == 9).all()


def test_npz_npy_and_statistics_files(tmp_path):
    images = np.random.RandomState(2).rand(7, 28, 28).astype(np.float32)
    np.savez(tmp_path / "x.npz", images=images, labels=np.zeros(7))
    np.save(tmp_path / "x.npy", images)
    for name in ("x.npz", "x.npy"):
        batches = list(open_source(tmp_path / name).batches(4))
        assert [len(b) for b in batches] == [4, 3]
        assert torch.equal(torch.cat(batches), to_uint8_nchw(images))
    np.savez(tmp_path / "stats.npz", mu=np.zeros(3), sigma=np.eye(3))
    with pytest.raises(ImprovedGANError, match="--reference"):
        open_source(tmp_path / "stats.npz")
    with pytest.raises(ImprovedGANError, match="does not exist"):
        open_source(tmp_path / "missing")


def test_run_directory_and_its_checkpoint_are_sampled(tmp_path):
    from improved_gan.cli.score import _input
    from improved_gan.training import RunDir, run_source, sample_from_run, train

    run = train(tiny_config(tmp_path, sample_grid=False, threads=1), progress=False)
    source = open_source(run_source(run, 150, seed=3))
    got = torch.cat(list(source.batches(100)))
    assert got.shape == (150, 1, 28, 28)
    assert torch.equal(got[:, 0], torch.from_numpy(sample_from_run(run, 150, seed=3)))
    checkpoint = run / "checkpoints" / "last.safetensors"
    assert RunDir.find(checkpoint).path == RunDir.find(run).path == run
    assert _input(str(checkpoint), 20).count == 20  # the CLI samples a checkpoint's run
    with pytest.raises(ImprovedGANError, match="holds no images"):  # the library takes samples, not runs
        open_source(run)


def test_dataset_split_by_name():
    source = open_source("mnist-test", n=10)
    batch = next(source.batches(10))
    assert batch.shape == (10, 1, 28, 28) and batch.dtype == torch.uint8
