"""Speed of the curve comparisons (firepbt.core.curves), moved out of the tests so that
the test suite asserts no timing (issue 9). Prints seconds; asserts nothing.

    PYTHONPATH=src python benchmarks/curves_speed.py

- a GP smoothing of a 1000-point curve (hyperparameters fitted on GP_FIT_POINTS points);
- a cached no-overlap comparison (``best_score_diff`` on the 32-δ grid path), which the
  FIRE PBT decider calls at every evaluator check: it should stay well under 1 ms.
"""

from __future__ import annotations

import time

import numpy as np

from firepbt.core.curves import Curve, best_score_diff, overlap


def main() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    x = np.arange(n) * 10.0
    truth = 1 - np.exp(-x / 3000)
    c = Curve(x, truth + rng.normal(0, 0.05, n))
    t = time.perf_counter()
    c.smoothed()
    print(f"GP smoothing of a {n}-point curve: {time.perf_counter() - t:.3f} s")

    x = np.arange(30) * 200
    a = Curve(x, 5 + np.log1p(np.arange(30)) + rng.normal(0, 0.05, 30))
    b = Curve(x, 0.5 * np.log1p(np.arange(30)) + rng.normal(0, 0.05, 30))
    assert overlap(a, b) is None  # the 32-δ grid path
    best_score_diff(a, b)  # fits cached
    reps = 200
    t = time.perf_counter()
    for _ in range(reps):
        best_score_diff(a, b)
    print(
        f"cached no-overlap best_score_diff: {(time.perf_counter() - t) / reps * 1e3:.3f} ms per call"
    )


if __name__ == "__main__":
    main()
