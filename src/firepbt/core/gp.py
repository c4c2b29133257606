"""Gaussian-process smoothing of a curve (SPEC "Curves", Smoothing; paper §3.1.1 step 1).

A Matérn ν=5/2 kernel times a constant plus white noise, hyperparameters by maximising
the marginal likelihood, y normalised: scikit-learn's ``GaussianProcessRegressor`` fit,
written out with the same floating-point operations (bit-identical, checked by
``tests/test_curves.py``) and about 3x faster. :class:`~firepbt.core.curves.Curve` calls
it; nothing else here knows about curves.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

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


_EYES: dict[int, np.ndarray] = {}


def _eye(n: int) -> np.ndarray:
    """np.eye(n), cached and read-only (fits call it ~100 times each for the same n)."""
    e = _EYES.get(n)
    if e is None:
        e = np.eye(n)
        e.flags.writeable = False
        _EYES[n] = e
    return e


def _kernel(X: np.ndarray, theta: np.ndarray, gradient: bool) -> Any:
    """K(X, X) of C·Matérn(5/2) + white noise at log-hyperparameters ``theta`` (and dK/dθ).

    scikit-learn computes the distances of the pairs i < j (``pdist``) and spreads them
    over the square matrix (``squareform``); here every element of the square matrix is
    computed with the same floating-point operations on the same operands (the (j, i)
    element's difference is the exact negation of the (i, j) one, so its square is the
    same), which gives the same matrix with a few NumPy calls instead of many: a fit
    evaluates this ~20 times, and call overhead was most of its cost (issue 12).
    ``tests/test_curves.py`` checks it against the pairwise form bit for bit.
    """
    c, length, noise = np.exp(theta[0]), np.exp(theta[1]), np.exp(theta[2])
    n = X.shape[0]
    length = np.squeeze(length).astype(float)
    z = (X / length)[:, 0]
    dists = np.sqrt((z[:, None] - z[None, :]) ** 2)  # 0 on the diagonal, as squareform's
    km = dists * math.sqrt(5)
    km = (1.0 + km + km**2 / 3.0) * np.exp(-km)
    km.flat[:: n + 1] = 1.0  # the diagonal, as fill_diagonal
    eye = _eye(n)
    k = c * km + noise * eye
    if not gradient:
        return k
    d = dists**2
    tmp = np.sqrt(5 * d)
    k_grad = np.empty((n, n, 3))
    k_grad[:, :, 0] = c * km
    k_grad[:, :, 1] = 5.0 / 3.0 * d * (tmp + 1) * np.exp(-tmp) * c
    k_grad[:, :, 2] = noise * eye
    return k, k_grad


def _kernel_pairwise(X: np.ndarray, theta: np.ndarray, gradient: bool) -> Any:
    """:func:`_kernel` in scikit-learn's form (pairs i < j, then squareform): the
    reference ``tests/test_curves.py`` compares :func:`_kernel` with."""
    from scipy.spatial.distance import squareform

    c, length, noise = np.exp(theta[0]), np.exp(theta[1]), np.exp(theta[2])
    n = X.shape[0]
    length = np.squeeze(length).astype(float)
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
        k.flat[:: k.shape[0] + 1] += _JITTER  # the diagonal, as k[diag_indices] += jitter
        try:
            L = _cholesky(k)
        except np.linalg.LinAlgError:
            return np.inf, -np.zeros_like(theta)
        alpha = _cho_solve(L, yt)
        lml = -0.5 * np.einsum("ik,ik->k", yt, alpha)
        lml -= np.log(np.diag(L)).sum()
        lml -= k.shape[0] / 2 * log_2pi
        inner = np.einsum("ik,jk->ijk", alpha, alpha)
        k_inv = _cho_solve(L, _eye(k.shape[0]))
        inner -= k_inv[..., np.newaxis]
        grad = 0.5 * np.einsum("ijl,jik->kl", inner, k_grad)
        return -lml.sum(axis=-1), -grad.sum(axis=-1)

    if _DIRECT["on"]:
        try:
            run = _Lbfgsb(_THETA0, _BOUNDS)
            while run.wants():
                run.tell(*neg_lml(run.x.copy()))
            return run.x
        except TypeError:  # a SciPy whose setulb takes other arguments: use minimize
            _DIRECT["on"] = False
    return np.asarray(minimize(neg_lml, _THETA0, method="L-BFGS-B", jac=True, bounds=_BOUNDS).x)


def _scipy_direct() -> bool:
    """Whether SciPy's L-BFGS-B is the reverse-communication C routine of SciPy >= 1.15
    (``setulb`` with integer task codes), which :class:`_Lbfgsb` drives."""
    import scipy

    major, minor = (int(v) for v in scipy.__version__.split(".")[:2])
    return (major, minor) >= (1, 15)


#: {"on": use :class:`_Lbfgsb`}: decided once; set to False if SciPy's routine refuses
#: our call
_DIRECT = {"on": _scipy_direct()}


class _Lbfgsb:
    """One L-BFGS-B minimisation, driven by hand through SciPy's reverse-communication
    routine ``setulb``: exactly the calls ``scipy.optimize.minimize(fun, x0,
    method="L-BFGS-B", jac=True, bounds=bounds)`` makes with its default options (SciPy
    >= 1.15: m = 10, ftol = 2.22e-9, gtol = 1e-5, maxls = 20, maxiter = maxfun = 15000),
    given the same f and g at the same points, so it ends at the same point to the last
    bit; without ``minimize``'s wrappers (``ScalarFunction``, ``MemoizeJac``), which were
    a fifth of a GP fit's time (issue 12). :meth:`wants` runs the routine until it asks
    for f and g at ``x`` (True) or stops (False, ``x`` is then the minimum); :meth:`tell`
    gives them. ``tests/test_curves.py`` checks it against ``minimize`` and the fits
    against scikit-learn, bit for bit.
    """

    M, GTOL, MAXLS, MAXITER, MAXFUN = 10, 1e-5, 20, 15000, 15000
    FACTR = 2.2204460492503131e-09 / np.finfo(float).eps

    def __init__(self, x0: np.ndarray, bounds: np.ndarray) -> None:
        from scipy.optimize import _lbfgsb

        self._setulb = _lbfgsb.setulb
        n = x0.size
        self.low = np.array(bounds[:, 0], dtype=np.float64)
        self.high = np.array(bounds[:, 1], dtype=np.float64)
        self.nbd = np.full(n, 2, np.int32)  # every variable bounded below and above
        self.x = np.array(np.clip(x0, self.low, self.high), dtype=np.float64)
        self.f: Any = np.array(0.0, dtype=np.float64)
        self.g = np.zeros(n, np.float64)
        m = self.M
        self.wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m, np.float64)
        self.iwa = np.zeros(3 * n, np.int32)
        self.task = np.zeros(2, np.int32)
        self.ln_task = np.zeros(2, np.int32)
        self.lsave = np.zeros(4, np.int32)
        self.isave = np.zeros(44, np.int32)
        self.dsave = np.zeros(29, np.float64)
        self.nit = self.nfev = 0
        self._at: np.ndarray | None = None  # the point of the last evaluation
        self._fg: tuple[Any, np.ndarray] | None = None

    def wants(self) -> bool:
        while True:
            self.g = self.g.astype(np.float64)
            self._setulb(self.M, self.x, self.low, self.high, self.nbd, self.f, self.g,
                         self.FACTR, self.GTOL, self.wa, self.iwa, self.task, self.lsave,
                         self.isave, self.dsave, self.MAXLS, self.ln_task)  # fmt: skip
            if self.task[0] == 3:  # f and g at x, please
                if self._at is not None and np.array_equal(self.x, self._at):
                    assert self._fg is not None
                    self.f, self.g = self._fg  # as ScalarFunction: no second evaluation
                    continue
                return True
            if self.task[0] == 1:  # a new iteration
                self.nit += 1
                if self.nit >= self.MAXITER:
                    self.task[0], self.task[1] = 5, 504
                elif self.nfev > self.MAXFUN:
                    self.task[0], self.task[1] = 5, 502
                continue
            return False

    def tell(self, f: Any, g: np.ndarray) -> None:
        self.nfev += 1
        self._at = self.x.copy()
        self._fg = (f, np.atleast_1d(g))
        self.f, self.g = self._fg


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
