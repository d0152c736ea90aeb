"""Giveaways: whether a simple classifier tells a model's images from the real ones.

A study is worth little when the two sets differ in something trivial that a rater can learn
(one pixel of a collapsed generator that is always bright, a brighter background): with feedback
a rater picks it up in a few trials and the accuracy measures the trick, not the samples (the
paper's section 4 reports how much feedback helped raters; a giveaway would inflate exactly that). Two
classifiers are fitted on the raw pixels, each scored on held-out images (stratified K-fold):

- the best single-pixel threshold rule ("pixel (22, 5) > 200 means generated");
- a logistic regression on all pixels (numpy, full-batch Adam).

:func:`find_giveaway` returns one line naming the giveaway when either tells the sets apart in
at least :data:`WARN_ACCURACY` of held-out images (balanced), else None. Both see the pixels in
steps of :data:`VISIBLE_STEP` levels: a rater cannot learn a difference nobody sees (a generator's
sigmoid leaves backgrounds of 1–3 where MNIST's are exactly 0; a program tells those apart, a
rater does not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from improved_gan.evaluation.report_stats import wilson_interval
from improved_gan.evaluation.study_file import StudyFile

WARN_ACCURACY = 0.75
#: Pixel differences smaller than this many levels (of 255) are taken as invisible to a rater.
VISIBLE_STEP = 16
FOLDS = 4
MIN_PER_SET = 8


@dataclass(frozen=True)
class PixelRule:
    """``pixel[index] > threshold`` (``above``) or ``<= threshold`` means generated."""

    index: int
    threshold: int
    above: bool

    def predict(self, x: np.ndarray) -> np.ndarray:
        values = x[:, self.index]
        return values > self.threshold if self.above else values <= self.threshold


def fit_pixel_rule(x: np.ndarray, y: np.ndarray) -> PixelRule:
    """The single-pixel threshold rule of best balanced accuracy on (``x`` uint8 (N, P), ``y`` bool:
    generated). Balanced accuracy of ``x_p > t`` is 0.5 + (F_real(t) − F_fake(t)) / 2 with F the
    per-pixel empirical CDFs, so one histogram per class gives every rule at once."""
    cdf = [_pixel_cdfs(x[y == label]) for label in (False, True)]
    gap = cdf[0] - cdf[1]  # (P, 256): > 0 favours "above t means generated"
    index = int(np.argmax(np.abs(gap).max(axis=1)))
    row = np.abs(gap[index])
    best = np.flatnonzero(row >= row.max() - 1e-9)  # the middle of the best thresholds: a wide margin
    threshold = int(best[len(best) // 2])
    return PixelRule(index, threshold, bool(gap[index, threshold] > 0))


def _pixel_cdfs(x: np.ndarray) -> np.ndarray:
    n, p = x.shape
    flat = (np.arange(p, dtype=np.int64)[None, :] * 256 + x.astype(np.int64)).ravel()
    counts = np.bincount(flat, minlength=p * 256).reshape(p, 256)
    return np.cumsum(counts, axis=1) / max(n, 1)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, steps: int = 300, lr: float = 0.05, l2: float = 1e-3
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Logistic regression on standardised pixels: (weights, bias, mean, scale)."""
    mean = x.mean(0)
    scale = x.std(0)
    scale[scale < 1e-6] = 1.0
    z = ((x - mean) / scale).astype(np.float32)
    target = y.astype(np.float32)
    weight, bias = np.zeros(z.shape[1], np.float32), np.zeros(1, np.float32)
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in (weight, bias)]
    for step in range(1, steps + 1):
        error = 0.5 * (1 + np.tanh(0.5 * (z @ weight + bias[0]))) - target  # sigmoid, no overflow
        grads = (z.T @ error / len(z) + l2 * weight, np.array([error.mean()], np.float32))
        for param, grad, (m, v) in zip((weight, bias), grads, moments):
            m += 0.1 * (grad - m)
            v += 0.001 * (grad * grad - v)
            param -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return weight, float(bias[0]), mean, scale


def _logistic_predict(model: tuple[np.ndarray, float, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    weight, bias, mean, scale = model
    return ((x - mean) / scale).astype(np.float32) @ weight + bias > 0


def _folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A fold number per example, stratified by class."""
    fold = np.empty(len(y), np.int64)
    for label in (False, True):
        where = rng.permutation(np.flatnonzero(y == label))
        fold[where] = np.arange(len(where)) % k
    return fold


@dataclass(frozen=True)
class HeldOut:
    """Held-out predictions pooled over the folds: balanced accuracy and a guard against luck."""

    balanced: float
    correct: int
    total: int

    @property
    def convincing(self) -> bool:
        """At or above :data:`WARN_ACCURACY`, and the 95 % interval of plain accuracy above 0.6."""
        return self.balanced >= WARN_ACCURACY and wilson_interval(self.correct, self.total)[0] > 0.6


def cross_validate(x: np.ndarray, y: np.ndarray, fit, predict, seed: int = 0) -> HeldOut:
    fold = _folds(y, FOLDS, np.random.default_rng(seed))
    guess = np.zeros(len(y), bool)
    for k in range(FOLDS):
        test = fold == k
        guess[test] = predict(fit(x[~test], y[~test]), x[test])
    right = guess == y
    return HeldOut(float((right[y].mean() + right[~y].mean()) / 2), int(right.sum()), len(y))


def find_giveaway(real: np.ndarray, fake: np.ndarray, model: str = "generated", seed: int = 0) -> str | None:
    """One line naming how ``fake`` images (uint8 (N, H, W[, 3])) are told from ``real`` ones by a
    simple classifier on pixels, or None when neither classifier does (or the sets are too small)."""
    if min(len(real), len(fake)) < MIN_PER_SET:
        return None
    x = np.concatenate([real.reshape(len(real), -1), fake.reshape(len(fake), -1)])
    x = x // VISIBLE_STEP * VISIBLE_STEP  # what a rater can see
    y = np.concatenate([np.zeros(len(real), bool), np.ones(len(fake), bool)])
    pixel = cross_validate(x, y, fit_pixel_rule, lambda rule, xs: rule.predict(xs), seed)
    logistic = cross_validate(x, y, fit_logistic, _logistic_predict, seed)
    if not (pixel.convincing or logistic.convincing):
        return None
    lead = f"model {model!r} is told from the real images by a simple classifier"
    tail = "; raters can learn that instead of judging the samples: fix the generator before the study"
    if pixel.convincing:
        rule = fit_pixel_rule(x, y)
        hits = rule.predict(x)
        where = _where(rule.index, real.shape[1:])
        sign = "above" if rule.above else "at most"
        return (
            f"{lead}: pixel {where} is {sign} {rule.threshold} in {100 * hits[y].mean():.1f} % of generated "
            f"and {100 * hits[~y].mean():.1f} % of real images ({100 * pixel.balanced:.0f} % held-out "
            f"accuracy; logistic regression on the pixels {100 * logistic.balanced:.0f} %){tail}"
        )
    weight = fit_logistic(x, y)[0]
    top = ", ".join(_where(int(i), real.shape[1:]) for i in np.argsort(-np.abs(weight))[:3])
    return (
        f"{lead}: a logistic regression on the pixels tells them apart in {100 * logistic.balanced:.0f} % of held-out "
        f"images (heaviest pixels {top}; mean brightness {fake.mean():.0f} generated vs "
        f"{real.mean():.0f} real){tail}"
    )


def _where(index: int, shape: tuple[int, ...]) -> str:
    """A flat pixel index as ``(row, column)`` or ``(row, column, channel)``."""
    return "(" + ", ".join(str(int(i)) for i in np.unravel_index(index, shape)) + ")"


def study_giveaways(study: StudyFile) -> list[str]:
    """:func:`find_giveaway` for each model of a study against its real images (the pixels served)."""
    pixels = study.pixels()
    sources = study.sources()
    real = next(name for name, is_real, _, _ in sources if is_real)
    found = (
        find_giveaway(pixels[real][1], pixels[name][1], name)
        for name, is_real, _, _ in sources
        if not is_real
    )
    return [line for line in found if line]
