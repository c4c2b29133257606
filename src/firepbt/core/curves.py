"""Training curves and their comparison (SPEC.md "Curves"; paper §3.1.1 and §3.2).

A :class:`Curve` holds the points (step, score) of one network since its last weight
copy. :func:`best_score_diff` says which of two curves improves faster (> 0: the first),
:func:`binom_test` whether the first improves significantly faster, and :func:`overlap`
exposes the overlapping sections both are computed on.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import bdtrc

__all__ = [
    "Curve",
    "overlap",
    "best_score_diff",
    "pairwise_best_score_diff",
    "binom_test",
    "N_DELTAS",
    "GP_FIT_POINTS",
    "STATS",
]

N_DELTAS = 32
"""Number of penalties δ tried when two curves do not overlap (SPEC "No overlap")."""

GP_FIT_POINTS = 64
"""Longer curves fit the GP hyperparameters on this many evenly thinned points."""

STATS: dict[str, float] = {
    "fits": 0,
    "conditioned": 0,
    "pairs": 0,
    "parallel_fits": 0,
    "parallel_cpu": 0.0,
    "wasted_fits": 0,
}
"""Diagnostic counters for the controller benchmark (``benchmarks/controller.py``):
GP hyperparameter fits, posterior means computed with kept hyperparameters
(``gp_refit > 0``), curve pairs compared by best_score_diff, the fits done in the
process pool of :func:`submit_fits` with their CPU seconds there, and the fits started
there but never used (the evaluator was freed first). They count work
only; nothing reads them to decide anything."""

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


def _gp_posterior_mean(steps: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Posterior mean of a GP (C·Matérn(5/2) + white noise, normalised y) at ``steps``.

    Hyperparameters maximise the marginal likelihood (empirical Bayes) with L-BFGS and no
    restarts, so the fit is deterministic. If the fit fails, the raw scores are returned.
    """
    return _gp_fit(steps, y)[0]


def _gp_fit(
    steps: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, tuple[float, float, float] | None]:
    """:func:`_gp_posterior_mean` and the fitted (length scale in steps, constant, noise).

    The kernel is None when the fit failed (the raw scores are then the smoothing).

    This is scikit-learn's ``GaussianProcessRegressor(ConstantKernel(1.0, (1e-3, 1e3)) *
    Matern(0.3, (1e-3, 1e3), nu=2.5) + WhiteKernel(0.1, (1e-8, 1e1)), normalize_y=True,
    n_restarts_optimizer=0)`` fit and predict, written out: the same floating-point
    operations in the same order (kernel, Cholesky, the marginal likelihood and its
    gradient, the same L-BFGS-B call), without the kernel objects' bookkeeping, which
    was most of a fit's time. ``tests/test_curves.py`` checks it against scikit-learn
    bit for bit (:func:`_gp_fit_sklearn`).
    """
    n = y.size
    span = float(steps[-1] - steps[0])
    # Steps scaled to [0, 1] for numerical stability (the length scale is then relative).
    x = (steps - steps[0]) / span if span > 0 else np.linspace(0.0, 1.0, n)
    X = np.asarray(x, dtype=np.float64).reshape(-1, 1)
    try:
        with _one_blas_thread():
            if n <= GP_FIT_POINTS:
                theta = _lml_argmax(X, y)
            else:
                # Engineering choice: a member's curve can reach ~1000 points and each
                # marginal-likelihood evaluation is O(n^3). Fit the hyperparameters on
                # GP_FIT_POINTS evenly thinned points, then condition on every point with
                # them fixed. Still empirical Bayes, on a subsample of the same curve.
                idx = np.unique(np.linspace(0, n - 1, GP_FIT_POINTS).round().astype(np.int64))
                theta = _lml_argmax(X[idx], y[idx])
                # scikit-learn's second regressor reads the kernel's theta back (log of
                # the exponentiated values) before conditioning: the same here
                theta = np.log(np.hstack([np.exp(theta[0]), np.exp(theta[1]), np.exp(theta[2])]))
            mean = _posterior_mean(X, y, theta)
    except (np.linalg.LinAlgError, ValueError):
        return y.copy(), None
    if not bool(np.all(np.isfinite(mean))):
        return y.copy(), None
    c, length, noise = np.exp(theta)  # (C, Matérn length scale, white noise)
    scale = span if span > 0 else 1.0 / max(n - 1, 1)  # x units -> steps
    return mean, (float(length) * scale, float(c), float(noise))


_THETA0 = np.log(np.hstack([1.0, 0.3, 0.1]))  # C, Matérn length scale, white noise
_BOUNDS = np.log(np.vstack([(1e-3, 1e3), (1e-3, 1e3), (1e-8, 1e1)]))
_JITTER = 1e-10  # scikit-learn's default alpha, added to the diagonal


def _normalised(y: np.ndarray) -> tuple[np.ndarray, Any, Any]:
    mean = np.mean(y, axis=0)
    std = np.std(y, axis=0)
    if std == 0.0:
        std = 1.0
    return (y - mean) / std, mean, std


def _kernel(X: np.ndarray, theta: np.ndarray, gradient: bool) -> Any:
    """K(X, X) of C·Matérn(5/2) + white noise at log-hyperparameters ``theta`` (and dK/dθ)."""
    from scipy.spatial.distance import squareform

    c, length, noise = np.exp(theta[0]), np.exp(theta[1]), np.exp(theta[2])
    n = X.shape[0]
    length = np.squeeze(length).astype(float)
    # pdist(X / length, "euclidean") for one-dimensional X: sqrt((u - v)^2), pairs (i < j)
    # in row-major order, the same operations as SciPy's C loop, without its wrappers
    z = (X / length)[:, 0]
    i, j = np.triu_indices(n, 1)
    dists = np.sqrt((z[i] - z[j]) ** 2)
    km = dists * math.sqrt(5)
    km = (1.0 + km + km**2 / 3.0) * np.exp(-km)
    km = squareform(km)
    np.fill_diagonal(km, 1)
    kc = np.full((n, n), c, dtype=np.array(c).dtype)
    white = noise * np.eye(n)
    k = kc * km + white
    if not gradient:
        return k
    d = squareform(dists**2)[:, :, np.newaxis]
    tmp = np.sqrt(5 * d.sum(-1))[..., np.newaxis]
    km_grad = (5.0 / 3.0 * d * (tmp + 1) * np.exp(-tmp))[:, :].sum(-1)[:, :, np.newaxis]
    kc_grad = np.full((n, n, 1), c, dtype=np.array(c).dtype)
    prod_grad = np.dstack((kc_grad * km[:, :, np.newaxis], km_grad * kc[:, :, np.newaxis]))
    return k, np.dstack((prod_grad, noise * np.eye(n)[:, :, np.newaxis]))


def _cholesky(k: np.ndarray) -> np.ndarray:
    """scipy.linalg.cholesky(k, lower=True) without its wrappers (the same LAPACK call)."""
    from scipy.linalg.lapack import dpotrf

    c, info = dpotrf(k, lower=1, overwrite_a=0, clean=1)
    if info > 0:
        raise np.linalg.LinAlgError(f"{info}-th leading minor not positive definite")
    if info < 0:
        raise ValueError(f"dpotrf: illegal value in argument {-info}")
    return np.asarray(c)


def _cho_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """scipy.linalg.cho_solve((L, True), b) without its wrappers (the same LAPACK call)."""
    from scipy.linalg.lapack import dpotrs

    x, info = dpotrs(L, b, lower=1, overwrite_b=0)
    if info != 0:
        raise ValueError(f"dpotrs: illegal value in argument {-info}")
    return np.asarray(x)


def _lml_argmax(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Log-hyperparameters maximising the marginal likelihood (L-BFGS-B from _THETA0)."""
    from scipy.optimize import minimize

    yt = _normalised(y)[0][:, np.newaxis]
    log_2pi = np.log(2 * np.pi)

    def neg_lml(theta: np.ndarray) -> tuple[Any, np.ndarray]:
        k, k_grad = _kernel(X, theta, True)
        k[np.diag_indices_from(k)] += _JITTER
        try:
            L = _cholesky(k)
        except np.linalg.LinAlgError:
            return np.inf, -np.zeros_like(theta)
        alpha = _cho_solve(L, yt)
        lml = -0.5 * np.einsum("ik,ik->k", yt, alpha)
        lml -= np.log(np.diag(L)).sum()
        lml -= k.shape[0] / 2 * log_2pi
        inner = np.einsum("ik,jk->ijk", alpha, alpha)
        k_inv = _cho_solve(L, np.eye(k.shape[0]))
        inner -= k_inv[..., np.newaxis]
        grad = 0.5 * np.einsum("ijl,jik->kl", inner, k_grad)
        return -lml.sum(axis=-1), -grad.sum(axis=-1)

    return np.asarray(minimize(neg_lml, _THETA0, method="L-BFGS-B", jac=True, bounds=_BOUNDS).x)


def _posterior_mean(X: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """GP posterior mean at the training inputs with fixed log-hyperparameters."""
    from scipy.spatial.distance import cdist

    yn, mean, std = _normalised(y)
    k = _kernel(X, theta, False)
    k[np.diag_indices_from(k)] += _JITTER
    L = _cholesky(k)
    alpha = _cho_solve(L, yn)
    c, length = np.exp(theta[0]), np.exp(theta[1])
    length = np.squeeze(length).astype(float)
    km = cdist(X / length, X / length, metric="euclidean") * math.sqrt(5)
    km = (1.0 + km + km**2 / 3.0) * np.exp(-km)
    n = X.shape[0]
    k_trans = np.full((n, n), c, dtype=np.array(c).dtype) * km + np.zeros((n, n))
    out = std * (k_trans @ alpha) + mean
    return np.asarray(out, dtype=np.float64).reshape(-1)


def _gp_fit_sklearn(
    steps: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, tuple[float, float, float] | None]:
    """:func:`_gp_fit` through scikit-learn's GaussianProcessRegressor (the reference the
    tests compare :func:`_gp_fit` with)."""
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
        return y.copy(), None
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    if not bool(np.all(np.isfinite(mean))):
        return y.copy(), None
    c, length, noise = np.exp(gp.kernel_.theta)  # (C, Matérn length scale, white noise)
    scale = span if span > 0 else 1.0 / max(n - 1, 1)  # x units -> steps
    return mean, (float(length) * scale, float(c), float(noise))


def _gp_condition(
    steps: np.ndarray, y: np.ndarray, kernel: tuple[float, float, float]
) -> np.ndarray:
    """Posterior mean at ``steps`` with kept hyperparameters (no marginal-likelihood fit).

    The same model as :func:`_gp_fit` (normalised y, C·Matérn(5/2) + white noise, jitter
    1e-10 as scikit-learn adds): one Cholesky of an n × n matrix, in NumPy. The length
    scale is kept in steps, so it keeps its meaning while the curve grows.
    """
    from scipy.linalg import cho_factor, cho_solve

    length, c, noise = kernel
    x = np.asarray(steps, dtype=np.float64)
    mu = float(y.mean())
    sd = float(y.std())
    sd = sd if sd > 0 else 1.0
    yn = (y - mu) / sd
    d = np.abs(x[:, None] - x[None, :]) * (math.sqrt(5.0) / length)
    kf = c * (1.0 + d + d * d / 3.0) * np.exp(-d)
    k = kf + np.eye(x.size) * (noise + 1e-10)
    try:
        alpha = cho_solve(cho_factor(k, lower=True, check_finite=False), yn, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return y.copy()
    mean = kf @ alpha * sd + mu
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
    STATS["pairs"] += 1
    return _best_score_diff(a, b, smooth)


def _best_score_diff(a: Curve, b: Curve, smooth: bool) -> float:
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


def pairwise_best_score_diff(
    curves: Sequence[Curve], pairs: np.ndarray, *, smooth: bool = True
) -> np.ndarray:
    """best_score_diff(curves[i], curves[j]) for every row (i, j) of ``pairs``, at once.

    The same numbers as :func:`best_score_diff` bit for bit: the same comparisons, maxima
    and subtractions of the same values (and the same δ grid as ``np.linspace`` makes it),
    vectorised over all pairs, for both the overlap and the "No overlap" cases. The curves
    should be finite (floored, SPEC "Bad scores"): a pair holding a non-finite curve, or
    whose δ grid is degenerate, is answered by the scalar :func:`best_score_diff`.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    STATS["pairs"] += len(pairs)
    out = np.zeros(len(pairs))
    if not len(pairs) or not curves:
        return out
    m = len(curves)
    lens = np.array([len(c) for c in curves], dtype=np.int64)
    finite = np.array([c.is_finite() for c in curves])
    width = max(int(lens.max()), 1)
    y = np.full((m, width), -np.inf)
    cm = np.full((m, width), np.inf)  # running max of ŷ, +inf past the end
    cm_low = np.full((m, width), -np.inf)  # the same, -inf past the end
    h0 = np.zeros(m)
    h_min = np.zeros(m)
    h_max = np.zeros(m)
    for i, c in enumerate(curves):
        if lens[i] and finite[i]:
            h = _yhat(c, smooth)
            y[i, : lens[i]] = c.scores
            cm[i, : lens[i]] = cm_low[i, : lens[i]] = np.maximum.accumulate(h)
            h0[i], h_min[i], h_max[i] = h[0], h.min(), h.max()
    ia, ib = pairs[:, 0], pairs[:, 1]
    scalar = ~(finite[ia] & finite[ib])
    live = (lens[ia] >= 2) & (lens[ib] >= 2) & ~scalar
    a_high = h0[ia] >= h0[ib]  # the higher-starting curve (ties: a) starts at 0
    other = np.where(a_high, ib, ia)
    t = np.where(a_high, h0[ia], h0[ib])
    # first r with ŷ_other[r] >= t = number of running-max entries below t
    r = (cm[other] < t[:, None]).sum(axis=1)
    s_a = np.where(a_high, 0, r)
    s_b = np.where(a_high, r, 0)
    n = np.minimum(lens[ia] - 1 - s_a, lens[ib] - 1 - s_b)
    ov = live & (r < lens[other]) & (n > 0)
    table = [y]
    w = 1
    while 2 * w <= width:
        prev = table[-1]
        table.append(np.concatenate([np.maximum(prev[:, :-w], prev[:, w:]), prev[:, -w:]], 1))
        w *= 2
    tab = np.stack(table)  # tab[k, c, s] = max(y_c[s : s + 2^k]) (within the row)

    def range_max(c: np.ndarray, lo: np.ndarray, nn: np.ndarray) -> np.ndarray:
        """max(y_c[lo : lo + nn + 1]), elementwise."""
        k = np.frexp((nn + 1).astype(np.float64))[1] - 1  # floor(log2(nn + 1))
        return np.maximum(tab[k, c, lo], tab[k, c, lo + nn + 1 - (1 << k)])

    if ov.any():
        out[ov] = range_max(ia[ov], s_a[ov], n[ov]) - range_max(ib[ov], s_b[ov], n[ov])
    rest = np.flatnonzero(live & ~ov)
    if rest.size:
        # SPEC "No overlap": u starts strictly higher (equal starts always overlap here)
        up = h0[ia[rest]] > h0[ib[rest]]
        u = np.where(up, ia[rest], ib[rest])
        lo_c = np.where(up, ib[rest], ia[rest])
        pen, done = _penalised_many(y, cm, cm_low, h0, h_min, h_max, lens, u, lo_c, range_max)
        out[rest[done]] = np.where(up[done], pen[done] + 0.0, -pen[done] + 0.0)
        scalar[rest[~done]] = True
    for p in np.flatnonzero(scalar):
        i, j = int(ia[p]), int(ib[p])
        out[p] = _best_score_diff(curves[i], curves[j], smooth)
    return out


def _penalised_many(
    y: np.ndarray,
    cm: np.ndarray,
    cm_low: np.ndarray,
    h0: np.ndarray,
    h_min: np.ndarray,
    h_max: np.ndarray,
    lens: np.ndarray,
    u: np.ndarray,
    low: np.ndarray,
    range_max: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_penalised_diff` for the pairs (u[p], low[p]), vectorised over pairs and δ.

    Returns (values, done): pairs whose δ grid is degenerate (a zero step, where
    ``np.linspace`` computes the grid another way) are left to the scalar path.
    """
    out = np.zeros(u.size)
    lo = h_min[u] - h_max[low]
    lo = np.where(lo > 0, lo, 0.0)  # max(0.0, ·) as Python computes it
    hi = h_min[u] - h_min[low]
    step = (hi - lo) / (N_DELTAS - 1)
    grid = hi >= lo
    done = ~grid | (step != 0)
    use = np.flatnonzero(grid & (step != 0))
    if not use.size:
        return out, done
    u, low, lo, hi, step = u[use], low[use], lo[use], hi[use], step[use]
    # np.linspace(lo, hi, N_DELTAS) for one pair: arange * step + lo, the last one hi
    d = np.arange(N_DELTAS, dtype=np.float64)[None, :] * step[:, None]
    d += lo[:, None]
    d[:, -1] = hi
    nu, nl = lens[u][:, None], lens[low][:, None]
    hu0, hl0 = h0[u][:, None], h0[low][:, None]
    u_high = (hu0 - d) >= hl0  # penalised u starts higher (ties: penalised u)
    # u higher: s_l = first r with ŷl[r] >= ŷu[0] - δ (running max: count of entries below)
    s_l = np.where(u_high, (cm[low][:, None, :] < (hu0 - d)[:, :, None]).sum(axis=2), 0)
    # l higher: s_u = first r with ŷu[r] - δ >= ŷl[0]
    reach = (cm_low[u][:, None, :] - d[:, :, None]) >= hl0[:, :, None]
    s_u = np.where(u_high, 0, np.where(reach.any(axis=2), reach.argmax(axis=2), nu))
    n = np.minimum(nu - 1 - s_u, nl - 1 - s_l)
    ok = (s_u < nu) & (s_l < nl) & (n > 0)
    diffs = np.full(d.shape, -np.inf)
    if ok.any():
        p, q = np.nonzero(ok)
        diffs[p, q] = (range_max(u[p], s_u[p, q], n[p, q]) - d[p, q]) - range_max(
            low[p], s_l[p, q], n[p, q]
        )
    best = diffs.max(axis=1)
    out[use] = np.where(ok.any(axis=1) & (best > 0), best, 0.0)
    return out, done
