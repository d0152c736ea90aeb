"""The IDX datasets' files: names, sizes, sha256 checksums and canonical mirrors."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IDXFile:
    """One IDX file: its standard name and the sha256 of its *decompressed* bytes.

    The checksum is taken after decompression so that a mirror re-compressing the same data
    still verifies.
    """

    name: str
    sha256: str


@dataclass(frozen=True)
class IDXDataset:
    name: str
    folder: str
    splits: dict[str, tuple[IDXFile, IDXFile, int]]  # split -> (images, labels, count)
    mirrors: tuple[str, ...]
    system_dirs: tuple[str, ...] = field(default_factory=tuple)
    num_classes: int = 10
    image_shape: tuple[int, int] = (28, 28)  # every image file must hold (N, *image_shape) uint8
    system_package: str = ""  # a Debian package that installs the files into system_dirs


MNIST = IDXDataset(
    name="mnist",
    folder="mnist",
    splits={
        "train": (
            IDXFile(
                "train-images-idx3-ubyte.gz",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            IDXFile(
                "train-labels-idx1-ubyte.gz",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            60000,
        ),
        "test": (
            IDXFile(
                "t10k-images-idx3-ubyte.gz",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            IDXFile(
                "t10k-labels-idx1-ubyte.gz",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
            10000,
        ),
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
)

FASHION_MNIST = IDXDataset(
    name="fashion-mnist",
    folder="fashion-mnist",
    splits={
        "train": (
            IDXFile(
                "train-images-idx3-ubyte.gz",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ),
            IDXFile(
                "train-labels-idx1-ubyte.gz",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
            60000,
        ),
        "test": (
            IDXFile(
                "t10k-images-idx3-ubyte.gz",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ),
            IDXFile(
                "t10k-labels-idx1-ubyte.gz",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
            10000,
        ),
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    system_package="dataset-fashion-mnist",
)

IDX_DATASETS: dict[str, IDXDataset] = {d.name: d for d in (MNIST, FASHION_MNIST)}
