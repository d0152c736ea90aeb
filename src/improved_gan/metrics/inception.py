"""The reference Inception-v3 (TF graph of 2015-12-05, 1008 outputs) in PyTorch, for the
Inception Score, FID and KID exactly as the original TensorFlow code computes them.

What the original graph does (openai/improved-gan `inception_score/model.py`, reproduced by torch-fidelity and
pytorch-fid, whose converted weights we load):

1. uint8 RGB input of any size, cast to float32;
2. TF-1 ``ResizeBilinear`` to 299×299 with ``align_corners=False`` and the *legacy* pixel
   mapping (source = destination · in/out, no half-pixel centres): :func:`resize_bilinear_tf1`;
3. (x − 128) / 128;
4. Inception-v3 whose average pools ignore the zero padding (TF ``SAME`` pooling) and whose last
   block max-pools its pool branch; pool3 = the 2048 global-average features;
5. ``logits_unbiased`` = pool3 · Wᵀ with the fc weight W (1008×2048) and **no bias**: the original
   code multiplied by the MatMul's weight and skipped the bias.

Weights: the converted checkpoint that torch-fidelity and pytorch-fid publish (same file,
sha256 ``6726825d…``). :func:`inception_weights_path` looks for it locally, downloads it into
the cache when allowed, and otherwise raises one error saying where to put it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from improved_gan.data.download import download_verified
from improved_gan.errors import ImprovedGANError

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_BYTES = 95_628_359
WEIGHTS_URLS = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_NAME,
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
)
WEIGHTS_ENV = "IMPROVED_GAN_INCEPTION_WEIGHTS"
# Other names and places the same bytes are commonly found under (torch.hub's cache).
_OTHER_NAMES = ("pt_inception-2015-12-05-6726825d.pth",)


# ----------------------------------------------------------------------------------------------
# TF-1 bilinear resize


def _tf1_axis(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices (lower, upper) and float32 weights of TF-1 legacy bilinear resizing along
    one axis: src = float32(dst) · float32(in/out); lower = floor(src); upper = min(lower+1, in−1);
    lerp = src − lower (TF ``resize_bilinear_op.cc``, ``LegacyScaler``)."""
    scale = torch.tensor(np.float32(in_size) / np.float32(out_size), dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32) * scale
    lower = src.floor().long()
    upper = (lower + 1).clamp(max=in_size - 1)
    return lower, upper, src - lower.to(torch.float32)


def resize_bilinear_tf1(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF-1.x ``tf.image.resize_bilinear(x, size, align_corners=False)`` (the legacy mapping of the
    2015 Inception graph), for float (N, C, H, W) -> (N, C, size[0], size[1]).

    Computed per axis in the same float operations as TF (top = tl + (tr − tl)·x_lerp, then
    top + (bottom − top)·y_lerp), so float32 results agree with TF's to rounding.
    """
    if x.dim() != 4 or not x.is_floating_point():
        raise ImprovedGANError(f"resize expects a float (N, C, H, W) tensor, got {x.dtype} {tuple(x.shape)}")
    out_h, out_w = size
    y0, y1, wy = (t.to(x.device) for t in _tf1_axis(x.shape[2], out_h))
    x0, x1, wx = (t.to(x.device) for t in _tf1_axis(x.shape[3], out_w))
    wx, wy = wx.to(x.dtype), wy.to(x.dtype)
    left, right = x[..., x0], x[..., x1]  # (N, C, H, out_w)
    rows = left + (right - left) * wx
    top, bottom = rows[..., y0, :], rows[..., y1, :]  # (N, C, out_h, out_w)
    return top + (bottom - top) * wy[:, None]


# ----------------------------------------------------------------------------------------------
# The network. Attribute names follow the converted checkpoint's keys (torchvision's naming).


class ConvBN(nn.Module):
    """Conv (no bias) + batch norm (eps 1e-3, as TF) + ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_same(x: torch.Tensor) -> torch.Tensor:
    """3×3 stride-1 average pool that, like TF's SAME pooling, averages only real pixels."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    """Mixed_5b/5c/5d (35×35): 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg-pool→1×1."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool_same(x)),
            ],
            1,
        )


class BlockB(nn.Module):
    """Mixed_6a (35→17): 3×3/2 | 1×1→3×3→3×3/2 | max-pool/2."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class BlockC(nn.Module):
    """Mixed_6b..6e (17×17) with factorised 7×7 convolutions."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool_same(x))], 1)


class BlockD(nn.Module):
    """Mixed_7a (17→8): 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max-pool/2."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):
    """Mixed_7b / 7c (8×8) with split 1×3 / 3×1 outputs. The 2015 graph average-pools the pool
    branch of Mixed_7b (padding excluded) but *max*-pools that of Mixed_7c."""

    def __init__(self, cin: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = _avg_pool_same(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(a),
                self.branch3x3_2b(a),
                self.branch3x3dbl_3a(d),
                self.branch3x3dbl_3b(d),
                self.branch_pool(pooled),
            ],
            1,
        )


class InceptionV3(nn.Module):
    """The 2015-12-05 Inception-v3 graph (1008 classes) as a feature extractor.

    ``forward(x)``: uint8 (N, 3, H, W) (or (N, 1, H, W), replicated to RGB) ->
    ``(pool3 (N, 2048), logits_unbiased (N, 1008))``, both float32. Matches torch-fidelity's
    ``inception-v3-compat`` features ``'2048'`` and ``'logits_unbiased'``.

    ``resize_to`` is 299 for the reference; smaller values (≥ 75) only make tests faster.
    Build with random weights (``InceptionV3()``) or the reference ones (:func:`load_inception`).
    """

    input_channels = 3
    input_size = None  # any size: the graph resizes
    feature_dim = 2048
    num_classes = 1008

    def __init__(self, resize_to: int = 299, internal_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.resize_to = resize_to
        self.internal_dtype = internal_dtype
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, pool="avg")
        self.Mixed_7c = BlockE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)
        self.to(internal_dtype)
        self.eval()

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> float (N, 3, resize_to, resize_to) in [−1, 1], as the graph does."""
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ImprovedGANError(
                f"Inception-v3 takes uint8 images (N, 3, H, W), got {x.dtype} {tuple(x.shape)}; "
                "convert with improved_gan.metrics.inputs.to_uint8_nchw"
            )
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = x.to(self.internal_dtype)
        x = resize_bilinear_tf1(x, (self.resize_to, self.resize_to))
        return (x - 128) / 128

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.preprocess(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        pool3 = x.mean(dim=(2, 3))  # (N, 2048)
        logits_unbiased = pool3 @ self.fc.weight.T  # (N, 1008), no bias as in the original code
        return pool3.float(), logits_unbiased.float()


# ----------------------------------------------------------------------------------------------
# Weights


def weights_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/improved_gan/weights`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "improved_gan" / "weights"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path) -> str | None:
    digest = _sha256_file(path)
    if digest != WEIGHTS_SHA256:
        return f"sha256 {digest[:16]}… is not the expected {WEIGHTS_SHA256[:16]}…"
    return None


def candidate_weight_paths() -> list[Path]:
    """Where the converted weights are looked for, in order (after an explicit path)."""
    places = []
    if os.environ.get(WEIGHTS_ENV):
        places.append(Path(os.environ[WEIGHTS_ENV]))
    places.append(weights_cache_dir() / WEIGHTS_NAME)
    torch_home = Path(os.environ.get("TORCH_HOME") or Path.home() / ".cache" / "torch")
    for name in (WEIGHTS_NAME, *_OTHER_NAMES):
        places.append(torch_home / "hub" / "checkpoints" / name)
    return places


def inception_weights_path(path: str | Path | None = None, download: bool = True) -> Path:
    """A verified local copy of the converted 2015-12-05 weights.

    ``path`` (e.g. ``--inception-weights``) wins; otherwise ``$IMPROVED_GAN_INCEPTION_WEIGHTS``, the
    cache (``~/.cache/improved_gan/weights``) and torch.hub's cache are tried, then a download into
    the cache from the published URLs (when ``download``). Every file is checked by sha256.
    """
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ImprovedGANError(f"Inception weights {path} is a folder; give the path of {WEIGHTS_NAME}")
        if not path.is_file():
            raise ImprovedGANError(f"Inception weights {path} do not exist; give the path of {WEIGHTS_NAME}")
        reason = _verify(path)
        if reason:
            raise ImprovedGANError(f"Inception weights {path}: {reason}; download {WEIGHTS_URLS[0]}")
        return path
    places = candidate_weight_paths()
    for place in places:
        if place.is_file():
            reason = _verify(place)
            if reason is None:
                return place
            raise ImprovedGANError(
                f"Inception weights {place}: {reason}; delete it and download {WEIGHTS_URLS[0]}"
            )
    failures: list[str] = []
    target = weights_cache_dir() / WEIGHTS_NAME
    if download:
        failures = download_verified(list(WEIGHTS_URLS), target, _verify, timeout=60.0)
        if target.is_file():
            return target
    tried = ("; download failed: " + " | ".join(failures)) if failures else "; downloading was disabled"
    raise ImprovedGANError(
        f"Inception weights not found (looked in {', '.join(str(p) for p in places)}{tried}). "
        f"Fix: download {WEIGHTS_URLS[0]} (sha256 {WEIGHTS_SHA256}) and put it at {target}, "
        f"or pass --inception-weights PATH / set {WEIGHTS_ENV}=PATH"
    )


def load_state_dict_checked(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` into ``model``, ignoring BN ``num_batches_tracked``, and fail with one clear
    message when names or shapes differ."""
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    given = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing, unexpected = sorted(set(own) - set(given)), sorted(set(given) - set(own))
    wrong = [k for k in own.keys() & given.keys() if tuple(own[k].shape) != tuple(given[k].shape)]
    if missing or unexpected or wrong:
        raise ImprovedGANError(
            "these are not the 2015-12-05 Inception weights: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shapes {wrong[:3]}"
        )
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(given[k].to(v.dtype))


def load_inception(
    path: str | Path | None = None,
    download: bool = True,
    device: str | torch.device = "cpu",
    internal_dtype: torch.dtype = torch.float32,
) -> InceptionV3:
    """The reference Inception-v3 with the converted weights, in eval mode, no gradients."""
    weights = inception_weights_path(path, download)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model = InceptionV3(internal_dtype=internal_dtype)
    load_state_dict_checked(model, state)
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
