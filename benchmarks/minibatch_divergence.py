"""Timings of the exact minibatch divergences (issue 5: "well under a second").

    PYTHONPATH=src python benchmarks/minibatch_divergence.py

Each case is timed cold (first call, which enumerates and caches the count vectors) and warm
(median of repeated calls with the count vectors cached), with ``time.perf_counter``.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from improved_gan.analysis import minibatch_report
from improved_gan.analysis.minibatch_divergence import (
    _count_vectors,
    minibatch_js,
    minibatch_kl,
    num_count_vectors,
    preference_js,
)


def _time(fn: Callable[[], float], repeats: int = 20) -> tuple[float, float]:
    start = time.perf_counter()
    fn()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - start)
    return cold, statistics.median(warm)


def main() -> None:
    rng = np.random.default_rng(0)
    p10, q10 = rng.dirichlet(np.ones(10)), rng.dirichlet(np.ones(10))
    cases: list[tuple[str, int, Callable[[], float]]] = [
        ("minibatch_js  Bernoulli n=256", num_count_vectors(256, 2), lambda: minibatch_js(0.2, 0.3, 256)),
        ("minibatch_kl  Bernoulli n=256", num_count_vectors(256, 2), lambda: minibatch_kl(0.2, 0.3, 256)),
        ("minibatch_js  K=10 n=8", num_count_vectors(8, 10), lambda: minibatch_js(p10, q10, 8)),
        ("minibatch_kl  K=10 n=8", num_count_vectors(8, 10), lambda: minibatch_kl(p10, q10, 8)),
        ("preference_js Bernoulli n=256", 257**2, lambda: preference_js(0.2, 0.3, 256)),
    ]
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"{'case':32s} {'terms':>8s} {'cold [ms]':>10s} {'warm [ms]':>10s}")
    for name, terms, fn in cases:
        _count_vectors.cache_clear()
        cold, warm = _time(fn)
        print(f"{name:32s} {terms:8d} {1e3 * cold:10.2f} {1e3 * warm:10.2f}")

    _count_vectors.cache_clear()
    qs = minibatch_report.q_grid(999)
    start = time.perf_counter()
    minibatch_report.js_curves(0.2, [1, 2, 3, 8], qs)
    print(f"figure curves: 4 x {qs.size} Bernoulli JS values in {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    minibatch_report.low_entropy_penalty_table()
    print(f"low-entropy penalty table (K=10, N=1,2,4,8): {time.perf_counter() - start:.2f} s")
    assert math.isfinite(minibatch_js(p10, q10, 8))


if __name__ == "__main__":
    main()
