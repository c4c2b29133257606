"""Training curves and their comparison (SPEC.md "Curves"; paper §3.1.1 and §3.2).

A :class:`Curve` holds the points (step, score) of one network since its last weight
copy. :func:`best_score_diff` says which of two curves improves faster (> 0: the first),
:func:`binom_test` whether the first improves significantly faster, and :func:`overlap`
exposes the overlapping sections both are computed on.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import bdtrc

__all__ = ["Curve", "overlap", "best_score_diff", "binom_test", "N_DELTAS", "GP_FIT_POINTS"]

N_DELTAS = 32
"""Number of penalties δ tried when two curves do not overlap (SPEC "No overlap")."""

GP_FIT_POINTS = 64
"""Longer curves fit the GP hyperparameters on this many evenly thinned points."""

_BLAS: Any = None


def _one_blas_thread():  # type: ignore[no-untyped-def]
    """A context limiting BLAS to one thread: GP matrices here are small, and a
    multi-threaded BLAS on a loaded machine was measured 10-20x slower per fit."""
    global _BLAS
    from threadpoolctl import ThreadpoolController

    if _BLAS is None:
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


_ArrayIn = Sequence[int] | Sequence[float] | np.ndarray


class Curve:
    """Points (step, score) of one network since its last weight copy, oldest first.

    Steps must not decrease. Scores may be non-finite (a diverged network, SPEC "Bad
    scores"); such a curve never enters a GP fit. The GP smoothing is cached and
    recomputed only after the curve gained points.
    """

    __slots__ = ("_steps", "_scores", "_n", "_n_bad", "_own_smoothing", "_smoothed", "_floored")

    def __init__(self, steps: _ArrayIn = (), scores: _ArrayIn = ()) -> None:
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
            if self._own_smoothing or self._n < 3 or self._n_bad or bool(np.all(y == y[0])):
                self._smoothed = y
            else:
                self._smoothed = _gp_posterior_mean(self.steps, y)
                self._smoothed.flags.writeable = False
        return self._smoothed

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
        out = Curve(self.steps, self.scores)
        out._own_smoothing = self._own_smoothing
        out._smoothed = self._smoothed
        return out


def _gp_posterior_mean(steps: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Posterior mean of a GP (C·Matérn(5/2) + white noise, normalised y) at ``steps``.

    Hyperparameters maximise the marginal likelihood (empirical Bayes) with L-BFGS and no
    restarts, so the fit is deterministic. If the fit fails, the raw scores are returned.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    n = y.size
    span = float(steps[-1] - steps[0])
    # Steps scaled to [0, 1] for numerical stability (the length scale is then relative).
    x = (steps - steps[0]) / span if span > 0 else np.linspace(0.0, 1.0, n)
    X = np.asarray(x, dtype=np.float64).reshape(-1, 1)
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
        length_scale=0.3, length_scale_bounds=(1e-3, 1e3), nu=2.5
    ) + WhiteKernel(noise_level=0.1, noise_level_bounds=(1e-8, 1e1))
    try:
        with warnings.catch_warnings(), _one_blas_thread():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if n <= GP_FIT_POINTS:
                gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=0)
                mean = gp.fit(X, y).predict(X)
            else:
                # Engineering choice: a member's curve can reach ~1000 points and each
                # marginal-likelihood evaluation is O(n^3). Fit the hyperparameters on
                # GP_FIT_POINTS evenly thinned points, then condition on every point with
                # them fixed. Still empirical Bayes, on a subsample of the same curve.
                idx = np.unique(np.linspace(0, n - 1, GP_FIT_POINTS).round().astype(np.int64))
                gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=0)
                gp.fit(X[idx], y[idx])
                full = GaussianProcessRegressor(gp.kernel_, normalize_y=True, optimizer=None)
                mean = full.fit(X, y).predict(X)
    except (np.linalg.LinAlgError, ValueError):
        return y.copy()
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    return mean if bool(np.all(np.isfinite(mean))) else y.copy()


def _floor_pair(a: Curve, b: Curve) -> tuple[Curve, Curve]:
    """Replace non-finite scores by (lowest finite score of both) − 1, or −1.0 if none."""
    if a.is_finite() and b.is_finite():
        return a, b
    ys = np.concatenate([a.scores, b.scores])
    finite = ys[np.isfinite(ys)]
    floor = float(finite.min()) - 1.0 if finite.size else -1.0
    return a.floored(floor), b.floored(floor)


def _yhat(c: Curve, smooth: bool) -> np.ndarray:
    return c.smoothed() if smooth else c.scores


def _first_at_least(h: np.ndarray, t: float) -> int | None:
    hit = h >= t
    i = int(hit.argmax())
    return i if hit[i] else None


def _starts(ha: np.ndarray, hb: np.ndarray) -> tuple[int, int, int] | None:
    """Overlap (s_a, s_b, n) of two smoothed curves (SPEC "Overlap"), or None."""
    if ha.size == 0 or hb.size == 0:
        return None
    s_a: int | None
    s_b: int | None
    if ha[0] >= hb[0]:  # a starts higher (ties: a)
        s_a, s_b = 0, _first_at_least(hb, ha[0])
    else:
        s_a, s_b = _first_at_least(ha, hb[0]), 0
    if s_a is None or s_b is None:
        return None
    n = min(ha.size - 1 - s_a, hb.size - 1 - s_b)
    return (s_a, s_b, n) if n > 0 else None


def _range_max(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(y[lo_i : hi_i + 1]) for each i (sparse table, vectorised over queries)."""
    table = [y]
    w = 1
    while 2 * w <= y.size:
        prev = table[-1]
        table.append(np.maximum(prev[:-w], prev[w:]))
        w *= 2
    k = np.frexp((hi - lo + 1).astype(np.float64))[1] - 1  # floor(log2(length))
    out = np.empty(lo.size)
    for level in np.unique(k):
        m = k == level
        t = table[level]
        out[m] = np.maximum(t[lo[m]], t[hi[m] - (1 << int(level)) + 1])
    return out


def _penalised_diff(yu: np.ndarray, hu: np.ndarray, yl: np.ndarray, hl: np.ndarray) -> float:
    """SPEC "No overlap": max over δ of best_score_diff(u − δ, l) if any is > 0, else 0.

    Vectorised over the δ grid; every comparison is done on the penalised values exactly
    as best_score_diff would do it on the penalised curve.
    """
    lo = max(0.0, float(hu.min() - hl.max()))
    hi = float(hu.min() - hl.min())
    if not hi >= lo:
        return 0.0
    d = np.linspace(lo, hi, N_DELTAS)
    nu, nl = hu.size, hl.size
    u_high = (hu[0] - d) >= hl[0]  # penalised u starts higher (ties: penalised u)
    # u higher: s_u = 0 and s_l = first r with ŷl[r] >= ŷu[0] − δ (via the running max).
    s_l = np.where(u_high, np.searchsorted(np.maximum.accumulate(hl), hu[0] - d), 0)
    # l higher: s_l = 0 and s_u = first r with ŷu[r] − δ >= ŷl[0].
    reach = (np.maximum.accumulate(hu)[None, :] - d[:, None]) >= hl[0]
    s_u = np.where(u_high, 0, np.where(reach.any(axis=1), reach.argmax(axis=1), nu))
    n = np.minimum(nu - 1 - s_u, nl - 1 - s_l)
    ok = (s_u < nu) & (s_l < nl) & (n > 0)
    if not ok.any():
        return 0.0
    s_u, s_l, n, d = s_u[ok], s_l[ok], n[ok], d[ok]
    diffs = (_range_max(yu, s_u, s_u + n) - d) - _range_max(yl, s_l, s_l + n)
    best = float(diffs.max())
    return best if best > 0 else 0.0


def overlap(a: Curve, b: Curve, *, smooth: bool = True) -> tuple[int, int, int] | None:
    """Overlapping sections (s_a, s_b, n): a[s_a : s_a+n+1] and b[s_b : s_b+n+1].

    SPEC "Overlap (steps 2–3)". None when the curves do not overlap (or one is empty).
    ``smooth=False`` uses the raw scores in place of the GP fit.
    """
    a, b = _floor_pair(a, b)
    return _starts(_yhat(a, smooth), _yhat(b, smooth))


def best_score_diff(a: Curve, b: Curve, *, smooth: bool = True) -> float:
    """> 0 when a improves faster than b (SPEC "best_score_diff" and "No overlap").

    Antisymmetric: best_score_diff(a, b) == -best_score_diff(b, a). An empty or one-point
    curve gives 0.0 (nothing to compare).
    """
    if len(a) < 2 or len(b) < 2:
        # Empty: nothing to compare. One point: n = 0 for every start and every δ (a
        # penalised curve keeps its length), so no overlap is ever found and the answer is 0.
        return 0.0
    a, b = _floor_pair(a, b)
    ha, hb = _yhat(a, smooth), _yhat(b, smooth)
    ov = _starts(ha, hb)
    if ov is not None:
        s_a, s_b, n = ov
        return float(a.scores[s_a : s_a + n + 1].max() - b.scores[s_b : s_b + n + 1].max())
    # Here ŷa[0] != ŷb[0]: equal starts put both sections at index 0, so no overlap would
    # mean a one-point curve, which was answered above. The orientation below therefore
    # never depends on argument order, and the result is antisymmetric.
    if ha[0] > hb[0]:
        return _penalised_diff(a.scores, ha, b.scores, hb) + 0.0
    return -_penalised_diff(b.scores, hb, a.scores, ha) + 0.0


def binom_test(a: Curve, b: Curve, *, smooth: bool = True) -> float | None:
    """One-sided p-value that a beats b pair by pair on the overlap (SPEC "binom_test").

    k = #{j in 1..n : y^a[s_a+j] > y^b[s_b+j]}; returns P(X >= k), X ~ Binomial(n, 1/2).
    None when there is no overlap (or a curve is empty): the caller treats that as
    "no overlap", never as a number.
    """
    if len(a) == 0 or len(b) == 0:
        return None
    a, b = _floor_pair(a, b)
    ov = _starts(_yhat(a, smooth), _yhat(b, smooth))
    if ov is None:
        return None
    s_a, s_b, n = ov
    k = int(np.count_nonzero(a.scores[s_a + 1 : s_a + n + 1] > b.scores[s_b + 1 : s_b + n + 1]))
    # bdtrc(k - 1, n, p) = P(X > k - 1) = P(X >= k); the ufunc behind scipy.stats.binom.sf.
    return 1.0 if k == 0 else float(bdtrc(k - 1, n, 0.5))
