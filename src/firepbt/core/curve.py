"""One training curve (SPEC "Curves"): its points since the last weight copy and its
GP smoothing (:mod:`firepbt.core.gp`), cached, refitted as the curve grows, optionally
fitted on a process pool (``algorithm.gp_workers``). Comparisons are in
:mod:`firepbt.core.curves`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from firepbt.core.gp import (
    STATS,
    _gp_condition,
    _gp_fit,
)

__all__ = ["Curve", "N_DELTAS", "cancel_fits", "fit_in_parallel", "submit_fits"]

N_DELTAS = 32
"""Number of penalties δ tried when two curves do not overlap (SPEC "No overlap")."""

_ArrayIn = Sequence[int] | Sequence[float] | np.ndarray


class Curve:
    """Points (step, score) of one network since its last weight copy, oldest first.

    Steps must not decrease. Scores may be non-finite (a diverged network, SPEC "Bad
    scores"); such a curve never enters a GP fit. The GP smoothing is cached and
    recomputed only after the curve gained points.
    """

    __slots__ = (
        "_steps",
        "_scores",
        "_n",
        "_n_bad",
        "_own_smoothing",
        "_smoothed",
        "_floored",
        "_kernel",
        "gp_refit",
    )

    def __init__(
        self, steps: _ArrayIn = (), scores: _ArrayIn = (), *, gp_refit: float = 0.0
    ) -> None:
        st = np.array(steps, dtype=np.int64).reshape(-1)
        sc = np.array(scores, dtype=np.float64).reshape(-1)
        if st.shape != sc.shape:
            raise ValueError(f"Curve: {st.size} steps but {sc.size} scores")
        if st.size > 1 and np.any(np.diff(st) < 0):
            raise ValueError("Curve: steps must be in training order (non-decreasing)")
        self._steps = st
        self._scores = sc
        self._n = st.size
        self._n_bad = int(np.count_nonzero(~np.isfinite(sc)))
        # True for a curve made by floored(): its network diverged, so the curve is its own
        # smoothing even though its (replaced) scores are finite.
        self._own_smoothing = False
        self._smoothed: np.ndarray | None = None
        self._floored: tuple[float, Curve] | None = None
        # (n at the fit, Matérn length scale in steps, constant, noise) of the latest
        # hyperparameter fit; reused for posterior means while the curve has grown by
        # less than the fraction gp_refit since (0: every smoothing refits, the exact
        # empirical Bayes of SPEC "Smoothing").
        self._kernel: tuple[int, float, float, float] | None = None
        self.gp_refit = float(gp_refit)

    @property
    def steps(self) -> np.ndarray:
        """Training steps (int64, read-only view)."""
        v = self._steps[: self._n]
        v.flags.writeable = False
        return v

    @property
    def scores(self) -> np.ndarray:
        """Raw scores y (float64, read-only view)."""
        v = self._scores[: self._n]
        v.flags.writeable = False
        return v

    def append(self, step: int, score: float) -> None:
        """Add a point at the end; invalidates the cached smoothing."""
        step, score = int(step), float(score)
        if self._n and step < self._steps[self._n - 1]:
            raise ValueError(f"Curve.append: step {step} before last step {self.latest}")
        if self._n == self._steps.size:  # grow the buffers geometrically
            cap = max(8, 2 * self._n)
            self._steps = np.concatenate(
                [self._steps[: self._n], np.zeros(cap - self._n, np.int64)]
            )
            self._scores = np.concatenate([self._scores[: self._n], np.zeros(cap - self._n)])
        self._steps[self._n] = step
        self._scores[self._n] = score
        self._n += 1
        self._n_bad += not np.isfinite(score)
        self._smoothed = None
        self._floored = None
        if _PENDING:
            cancel_fits([self])  # a fit of the points before this one

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"Curve(n={self._n}, latest={self.latest})"

    @property
    def latest(self) -> tuple[int, float] | None:
        """The newest point (step, score), or None for an empty curve."""
        if not self._n:
            return None
        return int(self._steps[self._n - 1]), float(self._scores[self._n - 1])

    def is_finite(self) -> bool:
        """True when every score is finite."""
        return self._n_bad == 0

    def smoothed(self) -> np.ndarray:
        """GP posterior mean ŷ at the curve's own steps (SPEC "Smoothing"), cached.

        Fewer than 3 points, a constant curve or a diverged one is its own smoothing.
        """
        if self._smoothed is None:
            y = self.scores
            pending = _PENDING.pop(id(self), None) if _PENDING else None
            if pending is not None and pending[0] is self:
                fit, cpu = pending[1].result()  # a fit submitted by submit_fits
                STATS["parallel_fits"] += 1
                STATS["parallel_cpu"] += cpu
                self._set_fit(fit)
            elif self._is_own_smoothing():
                self._smoothed = y
            else:
                k = self._kernel
                if self.gp_refit > 0 and k is not None and self._n < k[0] * (1 + self.gp_refit):
                    STATS["conditioned"] += 1
                    self._smoothed = _gp_condition(self.steps, y, k[1:])
                    self._smoothed.flags.writeable = False
                else:
                    self._set_fit(_gp_fit(self.steps, y))
        assert self._smoothed is not None
        return self._smoothed

    def _is_own_smoothing(self) -> bool:
        y = self.scores
        return self._own_smoothing or self._n < 3 or bool(self._n_bad) or bool(np.all(y == y[0]))

    def _set_fit(self, fit: tuple[np.ndarray, tuple[float, float, float] | None]) -> None:
        """Cache a result of :func:`_gp_fit` on this curve's current points."""
        STATS["fits"] += 1
        mean, kernel = fit
        self._kernel = None if kernel is None else (self._n, *kernel)
        mean.flags.writeable = False
        self._smoothed = mean

    def floored(self, floor: float) -> Curve:
        """This curve with non-finite scores replaced by ``floor`` (SPEC "Bad scores").

        Returns ``self`` when every score is finite. Otherwise a new curve, which is its
        own smoothing (a diverged network never enters a GP fit).
        """
        if self._n_bad == 0:
            return self
        floor = float(floor)
        if self._floored is not None and self._floored[0] == floor:
            return self._floored[1]
        y = self.scores
        out = Curve(self.steps, np.where(np.isfinite(y), y, floor))
        out._own_smoothing = True
        self._floored = (floor, out)
        return out

    def copy(self) -> Curve:
        """An independent copy (shares the immutable cached smoothing)."""
        out = Curve(self.steps, self.scores, gp_refit=self.gp_refit)
        out._own_smoothing = self._own_smoothing
        out._smoothed = self._smoothed
        out._kernel = self._kernel
        return out


_POOLS: dict[int, Any] = {}
#: id(curve) -> (curve, future of its fit): fits submitted by submit_fits, not yet used
_PENDING: dict[int, tuple[Curve, Any]] = {}


def _fit_points(points: tuple[np.ndarray, np.ndarray]) -> Any:
    import time

    t = time.process_time()
    fit = _gp_fit(*points)
    return fit, time.process_time() - t


def _pool(workers: int) -> Any:
    pool = _POOLS.get(workers)
    if pool is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded controller
        pool = _POOLS[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    return pool


def submit_fits(curves: Sequence[Curve], workers: int) -> list[Curve]:
    """Start, on a pool of ``workers`` processes, the GP fit of every curve in ``curves``
    (in that order) that :meth:`Curve.smoothed` would fit from scratch (``gp_refit == 0``,
    no cached smoothing, at least 3 finite, not all equal scores); ``smoothed()`` then
    takes the fit's result instead of fitting. Returns the curves submitted: pass them to
    :func:`cancel_fits` when the fits may no longer be needed.

    A fit is a pure function of the curve's points (:func:`_gp_fit`: deterministic
    L-BFGS-B, one BLAS thread), so a fit done in another process of the same
    interpreter and libraries is the same to the last bit, and every decision is the one
    :meth:`Curve.smoothed` would have made (``tests/test_curves.py``,
    ``tests/test_same_decisions.py``). Curves with ``gp_refit > 0`` are left to
    :meth:`Curve.smoothed`, in order (whether they fit or condition depends on when).
    The pool (spawned processes) is made on first use and kept for the process's life.
    """
    if workers <= 1:
        return []
    todo: list[Curve] = []
    for c in curves:
        if id(c) in _PENDING or c._smoothed is not None or c.gp_refit > 0:
            continue
        if not c._is_own_smoothing():
            todo.append(c)
            _PENDING[id(c)] = (c, None)
    if not todo:
        return []
    pool = _pool(workers)
    for c in todo:
        _PENDING[id(c)] = (c, pool.submit(_fit_points, (c.steps.copy(), c.scores.copy())))
    return todo


def cancel_fits(curves: Sequence[Curve]) -> None:
    """Forget the fits of ``curves`` submitted and not used; cancel those not started
    (the CPU time of those already running is still counted in ``STATS``)."""
    for c in curves:
        pending = _PENDING.pop(id(c), None)
        if pending is None or pending[0] is not c:
            continue
        fut = pending[1]
        if not fut.cancel():
            STATS["wasted_fits"] += 1
            fut.add_done_callback(_count_cpu)


def _count_cpu(fut: Any) -> None:
    if not fut.cancelled() and fut.exception() is None:
        STATS["parallel_cpu"] += fut.result()[1]


def fit_in_parallel(curves: Sequence[Curve], workers: int) -> int:
    """Fit every curve of ``curves`` that needs a fit on the pool and cache the results
    (:func:`submit_fits`, then every result taken). Returns the number of fits."""
    todo = submit_fits(curves, workers)
    for c in todo:
        c.smoothed()
    return len(todo)
