"""The visual Turing test leaks nothing but the pixels (Salimans et al. 2016, section 4: raters
judge the images, not their file sizes): every image is fetched through the app and no byte count,
header or response time tells real from generated better than AUC 0.6."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image
from turing_support import LiveServer, Rater, db_rows

from improved_gan.evaluation import prepare_study
from improved_gan.evaluation.turing_app import served_images

N = 200  # per class: the AUC of a statistic with no information is 0.5 ± 0.029 (1 s.d.)
MAX_AUC = 0.6


def auc(values: list, is_real: list[bool]) -> float:
    """The Mann–Whitney AUC of ``values`` separating real from generated, folded to >= 0.5
    (a statistic that ranks generated images higher leaks as much as one that ranks them lower).

    Any sortable values (numbers, header strings) are ranked; ties count a half."""
    order = {v: rank for rank, v in enumerate(sorted(set(values)))}
    ranks = np.array([order[v] for v in values], dtype=np.int64)
    truth = np.asarray(is_real, dtype=bool)
    pos, neg = ranks[truth], ranks[~truth]
    above = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    return float(max(above, 1 - above))


def test_auc_is_the_mann_whitney_statistic():
    assert auc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert auc([1, 2, 3, 4], [True, True, False, False]) == 1.0
    assert auc([5, 5, 5, 5], [True, False, True, False]) == 0.5
    assert auc([1, 3, 2, 4], [False, False, True, True]) == 0.75
    assert auc(["a", "b"], [True, False]) == 1.0


def digit_sets(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """ "Real": clean strokes on black (compress well); "generated": the same on a noisy background."""
    clean = np.zeros((N, 28, 28), np.uint8)
    for image in clean:
        r, c = rng.integers(4, 16, 2)
        image[r : r + 10, c : c + 3] = 255
        image[r : r + 3, c : c + 9] = 230
    noisy = np.zeros_like(clean)
    for i, image in enumerate(noisy):
        image[:] = rng.integers(0, 60, (28, 28))
        image[clean[(i + 1) % N] > 0] = 240
    return clean, noisy


def compressed_png_size(pixels: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=6)
    return len(buffer.getvalue())


@pytest.mark.hostile
def test_no_byte_count_header_or_timing_tells_real_from_generated(tmp_path):
    real, fake = digit_sets(np.random.default_rng(0))
    # The sets differ in compressibility: a compressed PNG's size alone would give them away.
    sizes = [compressed_png_size(x) for x in real] + [compressed_png_size(x) for x in fake]
    assert auc(sizes, [True] * N + [False] * N) > 0.95
    np.savez(tmp_path / "real.npz", images=real)
    np.savez(tmp_path / "noisy.npz", images=fake)
    db_path = tmp_path / "study.sqlite"
    prepare_study(db_path, str(tmp_path / "real.npz"), [str(tmp_path / "noisy.npz")], N).close()

    fetched: list[tuple[bool, dict[str, str], int, float]] = []
    # 2N per rater without feedback: one session shows every image of the study exactly once.
    with LiveServer(db_path, per_rater=2 * N) as server:
        rater = Rater(server.url)
        assert rater.start().status_code == 200
        rater.page()
        for _ in range(2 * N):
            start = time.perf_counter()
            response = rater.image()
            elapsed = time.perf_counter() - start
            assert response.status_code == 200
            token = rater.trial
            fetched.append((token, dict(response.headers), len(response.content), elapsed))
            assert rater.answer("real").status_code == 200
        rater.close()
    truth = dict(
        db_rows(db_path, "SELECT t.token, i.is_real FROM trials t JOIN images i ON i.id = t.image_id")
    )
    is_real = [bool(truth[token]) for token, *_ in fetched]
    assert sum(is_real) == N and len({token for token, *_ in fetched}) == 2 * N  # every image once

    leaks = {
        "body length": auc([n for *_, n, _ in fetched], is_real),
        "response time": auc([t for *_, t in fetched], is_real),
    }
    names = set().union(*(headers for _, headers, _, _ in fetched))
    assert "content-length" in names and "content-type" in names
    for name in names:
        leaks[f"header {name}"] = auc([headers.get(name, "") for _, headers, _, _ in fetched], is_real)
    leaks["content-length as a number"] = auc([int(h["content-length"]) for _, h, _, _ in fetched], is_real)
    assert max(leaks.values()) <= MAX_AUC, leaks
    assert len({n for *_, n, _ in fetched}) == 1  # one byte length for every image


def test_every_stored_image_is_served_as_one_uncompressed_png_of_one_length(tmp_path):
    real, fake = digit_sets(np.random.default_rng(1))
    np.savez(tmp_path / "real.npz", images=real[:20])
    np.savez(tmp_path / "noisy.npz", images=fake[:20])
    db = prepare_study(tmp_path / "s.sqlite", str(tmp_path / "real.npz"), [str(tmp_path / "noisy.npz")], 20)
    try:
        served = served_images(db)
        pixels = {i: x for ids, images in db.pixels().values() for i, x in zip(ids, images)}
    finally:
        db.close()
    assert len(served) == 40 and len({len(png) for png in served.values()}) == 1
    for image_id, png in served.items():
        with Image.open(io.BytesIO(png)) as img:
            assert img.format == "PNG" and not img.info  # no metadata chunks
            np.testing.assert_array_equal(np.asarray(img), pixels[image_id])
