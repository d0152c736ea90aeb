"""Image grids and conversions for samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8_images(x: torch.Tensor, height: int = 28, width: int = 28, value_range=(0.0, 1.0)) -> np.ndarray:
    """(N, H*W), (N, H, W) or (N, 1, H, W) floats in ``value_range`` -> uint8 array (N, H, W);
    colour images (N, 3, H, W) -> uint8 (N, H, W, 3)."""
    lo, hi = value_range
    x = ((x.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    if x.dim() == 4 and x.shape[1] == 3:
        return (x.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    if x.dim() == 4:
        height, width = x.shape[2:]
    return (x.reshape(-1, height, width) * 255).round().to(torch.uint8).numpy()


def save_grid(images: np.ndarray, path: str | Path, rows: int | None = None, pad: int = 1) -> Path:
    """Tile uint8 images (N, H, W) or (N, H, W, 3) into one PNG grid (``rows`` × ceil(N/rows))."""
    n, h, w = images.shape[:3]
    rows = rows or int(np.ceil(np.sqrt(n)))
    cols = int(np.ceil(n / rows))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, *images.shape[3:]), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = (
            img
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    return path
