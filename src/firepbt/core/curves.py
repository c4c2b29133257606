"""Training curves and their comparison (SPEC.md "Curves"; paper §3.1.1 and §3.2).

A :class:`Curve` holds the points (step, score) of one network since its last weight
copy. :func:`best_score_diff` says which of two curves improves faster (> 0: the first),
:func:`binom_test` whether the first improves significantly faster, and :func:`overlap`
exposes the overlapping sections both are computed on.
"""

from __future__ import annotations

import numpy as np
from scipy.special import bdtrc

from firepbt.core.curve import N_DELTAS, Curve, cancel_fits, fit_in_parallel, submit_fits
from firepbt.core.gp import (  # noqa: F401  (re-exported: tests and the benchmark use them)
    GP_FIT_POINTS,
    STATS,
    _gp_condition,
    _gp_fit,
    _gp_fit_sklearn,
    _gp_posterior_mean,
    _posterior_mean,
)

__all__ = [
    "Curve",
    "overlap",
    "best_score_diff",
    "binom_test",
    "N_DELTAS",
    "GP_FIT_POINTS",
    "STATS",
    "cancel_fits",
    "fit_in_parallel",
    "submit_fits",
]


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
