"""best_score_diff over many curve pairs at once, vectorised (issue 12).

The same numbers as :func:`~firepbt.core.curves.best_score_diff` pair by pair, bit for
bit (``tests/test_curves.py``), computed over all pairs of a sub-population and over the
δ grid in NumPy; FIRE PBT's parent fitness (SPEC "Parent fitness") uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from firepbt.core.curves import (
    N_DELTAS,
    STATS,
    Curve,
    _best_score_diff,
    _yhat,
)

__all__ = ["pairwise_best_score_diff"]


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
