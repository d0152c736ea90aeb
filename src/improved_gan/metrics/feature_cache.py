"""A disk cache of a reference's extracted features, so FID/KID against the same dataset split,
folder or array file extract its features once.

Files are safetensors (float32 ``features`` (N, D), never a pickle) under
``$XDG_CACHE_HOME/improved_gan/features/`` (``~/.cache/...`` when unset), named by a sha256
over the extractor's name and description, a digest of its weights, the value range, and the
uint8 images in order (:func:`cache_key`). Writes are atomic (temporary file, then
``os.replace``); a file that is unreadable, or whose key, size or values do not match, is
ignored with a warning and rewritten, never trusted.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from improved_gan.metrics.extractors import Extractor
from improved_gan.metrics.inputs import ImageSource

FORMAT = "improved-gan-features/1"
_HASH_BATCH = 100


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/improved_gan/features`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "improved_gan" / "features"


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 over a module's state dict: every tensor's name, dtype, shape and bytes, by name."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def content_digest(source: ImageSource) -> str:
    """sha256 over a source's uint8 (B, C, H, W) batches in order: each new image shape, then the
    pixels (independent of how the images are batched)."""
    digest, shape = hashlib.sha256(), None
    for batch in source.batches(_HASH_BATCH):
        if tuple(batch.shape[1:]) != shape:
            shape = tuple(batch.shape[1:])
            digest.update(f"shape{shape}|".encode())
        digest.update(batch.contiguous().numpy().tobytes())
    digest.update(f"count{source.count}".encode())
    return digest.hexdigest()


def cache_key(extractor: Extractor, source: ImageSource, value_range: str) -> str:
    """The sha256 naming a reference's features: extractor (name, description with its
    preprocessing, weights digest), value range and image content."""
    parts = (FORMAT, extractor.name, extractor.description, weights_digest(extractor.module), value_range)
    digest = hashlib.sha256("\n".join(parts).encode())
    digest.update(content_digest(source).encode())
    return digest.hexdigest()


def cache_path(key: str) -> Path:
    return cache_dir() / f"{key}.safetensors"


def _ignored(path: Path, why: str) -> None:
    warnings.warn(f"feature cache {path} {why}; ignoring it and extracting again", stacklevel=3)


def load_features(path: Path, key: str, count: int, dim: int | None) -> np.ndarray | None:
    """The cached (count, dim) float32 features at ``path``, or None when there are none; a file
    that is unreadable or does not match is ignored with a warning."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            features = f.get_tensor("features") if "features" in f.keys() else None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        _ignored(path, f"is unreadable ({' '.join(str(exc).split())[:120]})")
        return None
    if meta.get("format") != FORMAT or meta.get("key") != key or features is None:
        _ignored(path, "does not match its name")
        return None
    ok_shape = features.dim() == 2 and len(features) == count and (dim is None or features.shape[1] == dim)
    if features.dtype != torch.float32 or not ok_shape:
        _ignored(path, f"holds {features.dtype} {tuple(features.shape)}, not float32 ({count}, {dim or 'D'})")
        return None
    if not torch.isfinite(features).all():
        _ignored(path, "holds NaN or infinite values")
        return None
    return features.numpy()


def save_features(path: Path, key: str, features: np.ndarray) -> bool:
    """Write ``features`` atomically (temporary file, fsync, ``os.replace``); False, with a
    warning, when the cache cannot be written (scoring goes on)."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tensor = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        save_file({"features": tensor}, tmp, metadata={"format": FORMAT, "key": key})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True
    except (OSError, SafetensorError) as exc:
        why = getattr(exc, "strerror", None) or exc
        warnings.warn(f"cannot write the feature cache {path} ({why}); not cached", stacklevel=2)
        return False
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def cached_features(
    source: ImageSource,
    extractor: Extractor,
    value_range: str,
    compute: Callable[[], np.ndarray],
    agree: Callable[[bool], bool] = lambda hit: hit,
    write: bool = True,
) -> tuple[np.ndarray, str, Path]:
    """``(features, "loaded" | "saved" | "extracted", path)``: the cached features of ``source``,
    else ``compute()``'s, then cached when ``write``. ``agree(hit)`` makes processes under
    torchrun take the same branch (all load, or all extract)."""
    key = cache_key(extractor, source, value_range)
    path = cache_path(key)
    features = load_features(path, key, source.count, extractor.feature_dim)
    if agree(features is not None):
        return features, "loaded", path
    features = compute()
    saved = write and save_features(path, key, features)
    return features, "saved" if saved else "extracted", path
