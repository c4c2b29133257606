"""Tests for firepbt.core.curves (SPEC.md "Curves"). Expected values are computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from firepbt.core import curve, curves, gp, pairwise
from firepbt.core.curves import Curve, best_score_diff, binom_test, overlap


def C(*scores: float, start: int = 0, every: int = 1) -> Curve:
    return Curve([start + every * i for i in range(len(scores))], scores)


# --------------------------------------------------------------------------- references
def ref_starts(ha, hb):
    """Plain-loop transcription of SPEC "Overlap" (independent of the module)."""
    if len(ha) == 0 or len(hb) == 0:
        return None
    if ha[0] >= hb[0]:
        s_a, s_b = 0, next((r for r in range(len(hb)) if hb[r] >= ha[0]), None)
    else:
        s_a, s_b = next((r for r in range(len(ha)) if ha[r] >= hb[0]), None), 0
    if s_a is None or s_b is None:
        return None
    n = min(len(ha) - 1 - s_a, len(hb) - 1 - s_b)
    return (s_a, s_b, n) if n > 0 else None


def ref_penalised(yu, hu, yl, hl):
    """Plain-loop SPEC "No overlap" for u above l: one δ at a time."""
    lo, hi = max(0.0, min(hu) - max(hl)), min(hu) - min(hl)
    if hi < lo:
        return 0.0
    found = []
    for d in np.linspace(lo, hi, 32):
        pu, ph = yu - d, hu - d
        ov = ref_starts(ph, hl)
        if ov is not None:
            s_u, s_l, n = ov
            found.append(pu[s_u : s_u + n + 1].max() - yl[s_l : s_l + n + 1].max())
    return max(found) if found and max(found) > 0 else 0.0


# --------------------------------------------------------------------------- Curve
def test_curve_basics_and_validation():
    c = Curve()
    assert len(c) == 0 and c.latest is None and c.is_finite()
    c.append(10, 0.5)
    c.append(20, 0.7)
    assert len(c) == 2 and c.latest == (20, 0.7)
    assert c.steps.dtype == np.int64 and c.scores.dtype == np.float64
    assert c.steps.tolist() == [10, 20] and c.scores.tolist() == [0.5, 0.7]
    with pytest.raises(ValueError):
        c.scores[0] = 1.0  # read-only view
    with pytest.raises(ValueError):
        c.append(15, 1.0)  # steps go backwards
    with pytest.raises(ValueError):
        Curve([1, 2], [0.1])
    with pytest.raises(ValueError):
        Curve([2, 1], [0.1, 0.2])
    for i in range(100):  # buffer growth keeps old points
        c.append(30 + i, float(i))
    assert len(c) == 102 and c.scores[1] == 0.7 and c.latest == (129, 99.0)


def test_copy_is_independent():
    c = C(1.0, 2.0, 3.0)
    d = c.copy()
    d.append(3, 4.0)
    assert len(c) == 3 and len(d) == 4 and c.latest == (2, 3.0)


# --------------------------------------------------------------------------- overlap
def test_figure3_situation():
    # Left: starts lower and earlier (step 0), improves fast then flattens; its average
    # rate (5.9 - 0) / 8 = 0.7375 beats the right one's (6 - 4.5) / 3 = 0.5.
    left = C(0, 2, 4, 5, 5.5, 5.6, 5.7, 5.8, 5.9)
    right = C(4.5, 5.0, 5.5, 6.0, start=5)  # starts higher, later, is shorter
    assert (5.9 - 0) / 8 > (6 - 4.5) / 3
    # right starts higher -> its section starts at 0; left first reaches 4.5 at index 3
    # (value 5); n = min(9-1-3, 4-1-0) = 3: the right curve constrains the length.
    assert overlap(left, right, smooth=False) == (3, 0, 3)
    assert overlap(right, left, smooth=False) == (0, 3, 3)
    # left section [5, 5.5, 5.6, 5.7] max 5.7; right section max 6.0 -> right is better.
    assert best_score_diff(left, right, smooth=False) == pytest.approx(-0.3)
    assert best_score_diff(right, left, smooth=False) == pytest.approx(0.3)
    # pairs j=1..3: left [5.5, 5.6, 5.7] vs right [5.0, 5.5, 6.0]: left wins 2 of 3.
    assert binom_test(left, right, smooth=False) == pytest.approx(4 / 8)
    assert binom_test(right, left, smooth=False) == pytest.approx(7 / 8)


def test_overlap_length_is_min_not_max():
    a = C(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    b = C(5, 7, 9)
    # b starts higher; a reaches 5 at index 5; n = min(9-5, 2-0) = 2 (max would be 4).
    assert overlap(a, b, smooth=False) == (5, 0, 2)
    # sections a[5:8] = [5, 6, 7] and b = [5, 7, 9]: 7 - 9 (max-length would give 0).
    assert best_score_diff(a, b, smooth=False) == -2.0
    assert binom_test(a, b, smooth=False) == 1.0  # a wins none of [6,7] vs [7,9]


def test_no_overlap_cases():
    # n == 0: a reaches b's start only at its last point.
    assert overlap(C(0, 1, 2, 3), C(3, 4), smooth=False) is None
    assert binom_test(C(0, 1, 2, 3), C(3, 4), smooth=False) is None
    # n == 0: a single-point curve never overlaps.
    assert overlap(C(1.0), C(0, 1, 2), smooth=False) is None
    # the lower curve never reaches the higher one's start.
    assert overlap(C(0, 1, 2), C(5, 6), smooth=False) is None
    assert binom_test(C(5, 6), C(0, 1, 2), smooth=False) is None
    # one index short of n == 0 overlaps with n == 1.
    assert overlap(C(0, 1, 3, 4), C(3, 4), smooth=False) == (2, 0, 1)


def test_overlap_ties_start_both_at_zero():
    a, b = C(1, 2, 3), C(1, 1.5, 4, 5)
    assert overlap(a, b, smooth=False) == (0, 0, 2)
    assert overlap(b, a, smooth=False) == (0, 0, 2)
    assert best_score_diff(a, b, smooth=False) == 3 - 4


def test_first_index_reaching_uses_greater_or_equal():
    # a reaches exactly 2 at index 2 (>=), not at index 3.
    assert overlap(C(0, 1, 2, 2.5, 3), C(2, 2.2, 2.4), smooth=False) == (2, 0, 2)


def test_one_point_curve_compares_as_zero():
    for other in (C(0.0, 5.0, 6.0), C(1.0, 1.0), C(1.0), C(-3.0, 0.0, 9.0)):
        assert best_score_diff(C(1.0), other) == 0.0 == best_score_diff(other, C(1.0))
        assert binom_test(C(1.0), other) is None


def test_empty_curves():
    assert best_score_diff(Curve(), C(1, 2)) == 0.0
    assert best_score_diff(C(1, 2), Curve()) == 0.0
    assert binom_test(Curve(), C(1, 2)) is None
    assert overlap(Curve(), Curve()) is None


# --------------------------------------------------------------------------- binom_test
def test_binom_test_pvalues():
    a = C(0, 1, 2, 3, 4, 5)
    assert binom_test(a, C(0, 0.5, 1.5, 2.5, 3.5, 4.5), smooth=False) == pytest.approx(1 / 32)
    # 3 wins of 5: P(X >= 3) = (10 + 5 + 1) / 32
    assert binom_test(a, C(0, 0.5, 1.5, 3.5, 4.5, 4.5), smooth=False) == pytest.approx(0.5)
    # equal points are not wins: 0 wins of 5 -> 1
    assert binom_test(a, a.copy(), smooth=False) == 1.0
    # the starting pair (j = 0) is not compared
    assert binom_test(C(0, 1, 2), C(0, 2, 3), smooth=False) == 1.0
    assert binom_test(C(0, 3, 4), C(0, 2, 3), smooth=False) == pytest.approx(1 / 4)


def test_binom_test_matches_scipy():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(2, 40))
        a = Curve(range(n), np.concatenate([[0.0], rng.normal(size=n - 1)]))
        b = Curve(range(n), np.concatenate([[0.0], rng.normal(size=n - 1)]))
        k = int(np.sum(a.scores[1:] > b.scores[1:]))
        assert binom_test(a, b, smooth=False) == pytest.approx(binom.sf(k - 1, n - 1, 0.5))


# --------------------------------------------------------------------------- best_score_diff
def test_best_score_diff_uses_raw_scores_on_smoothed_sections():
    rng = np.random.default_rng(7)
    x = np.arange(40)
    a = Curve(x, np.log1p(x) + rng.normal(0, 0.1, 40))
    b = Curve(x + 10, 1.5 + 0.5 * np.log1p(x) + rng.normal(0, 0.1, 40))
    ov = overlap(a, b)
    assert ov is not None and ov == ref_starts(a.smoothed(), b.smoothed())
    s_a, s_b, n = ov
    expected = a.scores[s_a : s_a + n + 1].max() - b.scores[s_b : s_b + n + 1].max()
    assert best_score_diff(a, b) == expected


def test_penalty_upper_curve_improving_faster_is_positive():
    u = C(3, 5, 7)  # strictly above l, improves by 2 per step
    l_ = C(0, 0.2, 0.4, 0.6, 0.8)  # improves by 0.2 per step
    assert overlap(u, l_, smooth=False) is None
    # δ in linspace(max(0, 3-0.8), 3-0, 32) = linspace(2.2, 3, 32). At δ = 3 the
    # penalised u [0, 2, 4] ties l at the start: n = min(2, 4) = 2 and the diff is
    # (7-3) - max(0, .2, .4) = 3.6. Smaller δ: δ in [2.6, 2.8) gives 6.2-δ <= 3.587;
    # δ in [2.8, 3) gives 6.4-δ <= 3.581; δ in [2.4, 2.6) gives 4.2-δ < 1.8.
    assert best_score_diff(u, l_, smooth=False) == pytest.approx(3.6)
    assert best_score_diff(l_, u, smooth=False) == pytest.approx(-3.6)


def test_penalty_upper_curve_improving_slower_is_zero():
    u = C(3, 3.1, 3.2)  # above l (l's max 2.9 < 3) but nearly flat
    l_ = C(0, 1, 2, 2.5, 2.9)  # every increment >= 0.4 > 0.1: l wins every penalised δ
    assert overlap(u, l_, smooth=False) is None
    assert ref_penalised(u.scores, u.scores, l_.scores, l_.scores) == 0.0
    assert best_score_diff(u, l_, smooth=False) == 0.0
    assert best_score_diff(l_, u, smooth=False) == 0.0


def test_penalty_empty_grid_is_zero():
    # u starts higher (5) and l never reaches it, but min(u) - min(l) = -0.5 < 0.
    u, l_ = C(5, 0.5), C(1, 2)
    assert overlap(u, l_, smooth=False) is None
    assert best_score_diff(u, l_, smooth=False) == 0.0


def test_penalty_vectorised_matches_plain_loop():
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(300):
        nu, nl = (int(v) for v in rng.integers(2, 25, size=2))
        yu = rng.normal(0, 1, nu).cumsum() + rng.uniform(0, 8)
        yl = rng.normal(0, 1, nl).cumsum()
        u, l_ = Curve(range(nu), yu), Curve(range(nl), yl)
        if overlap(u, l_, smooth=False) is not None or yu[0] == yl[0]:
            continue
        if yu[0] < yl[0]:
            u, l_ = l_, u
        expected = ref_penalised(u.scores, u.scores, l_.scores, l_.scores)
        assert best_score_diff(u, l_, smooth=False) == expected
        assert best_score_diff(l_, u, smooth=False) == -expected
        checked += 1
    assert checked > 100
    # on GP-smoothed curves (ŷ != y), the grid is laid and overlaps found on ŷ
    checked = 0
    for _ in range(20):
        nu, nl = (int(v) for v in rng.integers(4, 25, size=2))
        u = Curve(range(nu), 3 + 0.3 * np.arange(nu) + rng.normal(0, 0.2, nu))
        l_ = Curve(range(nl), 0.1 * np.arange(nl) + rng.normal(0, 0.2, nl))
        if overlap(u, l_) is not None or u.smoothed()[0] <= l_.smoothed()[0]:
            continue
        expected = ref_penalised(u.scores, u.smoothed(), l_.scores, l_.smoothed())
        assert best_score_diff(u, l_) == expected == -best_score_diff(l_, u)
        checked += expected > 0
    assert checked >= 5


@pytest.mark.parametrize("smooth", [False, True])
def test_antisymmetry_random_curves(smooth):
    rng = np.random.default_rng(2024)
    pool = []
    for i in range(24):
        n = int(rng.integers(1, 30))
        if i % 3 == 0:  # integer steps of a random walk: many ties
            y = rng.integers(-1, 3, n).cumsum().astype(float)
        else:
            y = rng.uniform(-2, 2) + (rng.uniform(0, 0.3) * np.arange(n) + rng.normal(0, 0.3, n))
        pool.append(Curve(100 * np.arange(n) + int(rng.integers(0, 500)), y))
    pool.append(pool[0].copy())
    pool.append(C(0.0))
    pool.append(C(0.0))
    for a in pool:
        for b in pool:
            ab = best_score_diff(a, b, smooth=smooth)
            assert ab == -best_score_diff(b, a, smooth=smooth)
            assert math.isfinite(ab)
            p_ab, p_ba = binom_test(a, b, smooth=smooth), binom_test(b, a, smooth=smooth)
            assert (p_ab is None) == (p_ba is None)


# --------------------------------------------------------------------------- bad scores
def test_diverged_curve_loses():
    good = C(0.0, 0.1, 0.2, 0.3)
    for bad_value in (np.nan, np.inf, -np.inf):
        bad = C(0.0, bad_value, bad_value, bad_value)
        assert not bad.is_finite()
        # floor = 0.0 - 1: bad becomes [0, -1, -1, -1]; both start at 0, n = 3.
        assert overlap(bad, good, smooth=False) == (0, 0, 3)
        assert best_score_diff(bad, good, smooth=False) == pytest.approx(-0.3)
        assert best_score_diff(good, bad, smooth=False) == pytest.approx(0.3)
        assert binom_test(bad, good, smooth=False) == 1.0
        assert binom_test(good, bad, smooth=False) == pytest.approx(1 / 8)
        # with the GP fit of the good curve it still loses (the penalty path)
        assert best_score_diff(bad, good) < 0 < best_score_diff(good, bad)


def test_floor_is_lowest_finite_minus_one():
    # lowest finite score of both curves is 5 -> floor 4: a = [4, 4, 4], b = [4, 5, 6].
    # Both start at 4 (tie): sections from 0, n = 2; 4 - 6 = -2 (a floor of -1 would give -7).
    a, b = C(np.nan, np.nan, np.nan), C(np.inf, 5, 6)
    assert overlap(a, b, smooth=False) == (0, 0, 2)
    assert best_score_diff(a, b, smooth=False) == -2.0
    assert best_score_diff(b, a) == 2.0
    fa, fb = curves._floor_pair(C(0.5, np.nan), C(1, 2, -2))
    assert fa.scores.tolist() == [0.5, -3.0] and fb.scores.tolist() == [1, 2, -2]
    # nothing finite in either curve: floor -1.0
    fa, fb = curves._floor_pair(C(np.nan, np.inf), C(-np.inf))
    assert fa.scores.tolist() == [-1.0, -1.0] and fb.scores.tolist() == [-1.0]
    assert best_score_diff(C(np.nan, np.nan), C(np.inf, np.nan)) == 0.0


def test_floored():
    good = C(1.0, 2.0, 3.0)
    assert good.floored(-5.0) is good
    bad = C(1.0, np.nan, 3.0, -np.inf, 2.0)
    f = bad.floored(-5.0)
    assert f is not bad and f.is_finite()
    assert f.scores.tolist() == [1.0, -5.0, 3.0, -5.0, 2.0]
    assert f.steps.tolist() == bad.steps.tolist()
    assert np.isnan(bad.scores[1])  # original untouched
    # a diverged network's curve never enters a GP fit: it is its own smoothing
    assert np.array_equal(f.smoothed(), f.scores)
    assert np.array_equal(bad.smoothed(), bad.scores, equal_nan=True)


# --------------------------------------------------------------------------- smoothing
def noisy_curve(n: int, seed: int = 0, noise: float = 0.05):
    rng = np.random.default_rng(seed)
    x = np.arange(n) * 200
    truth = 1.0 - np.exp(-x / (x[-1] / 3.0))
    return Curve(x, truth + rng.normal(0, noise, n)), truth


def test_smoothing_is_cached_until_append(monkeypatch):
    calls = []
    fit = curve._gp_fit
    monkeypatch.setattr(curve, "_gp_fit", lambda x, y: calls.append(1) or fit(x, y))
    c, _ = noisy_curve(30)
    s1 = c.smoothed()
    assert c.smoothed() is s1 and len(calls) == 1
    best_score_diff(c, noisy_curve(20, seed=1)[0])
    binom_test(c, noisy_curve(20, seed=1)[0])
    assert c.smoothed() is s1 and len(calls) == 3  # c not refitted; two new curves fitted
    c.append(30 * 200, 0.95)
    s2 = c.smoothed()
    assert s2 is not s1 and len(s2) == 31 and len(calls) == 4
    assert not s2.flags.writeable


def test_smoothing_reduces_noise():
    c, truth = noisy_curve(50)
    raw_err = np.sqrt(np.mean((c.scores - truth) ** 2))
    gp_err = np.sqrt(np.mean((c.smoothed() - truth) ** 2))
    assert gp_err < 0.6 * raw_err
    # deterministic
    again = Curve(c.steps, c.scores).smoothed()
    assert np.array_equal(again, c.smoothed())


def test_short_and_constant_curves_are_their_own_smoothing():
    for c in (C(1.0), C(1.0, 3.0), C(2.0, 2.0, 2.0, 2.0, 2.0)):
        assert np.array_equal(c.smoothed(), c.scores)
    assert len(Curve().smoothed()) == 0
    assert not np.array_equal(C(0.0, 1.0, 0.0, 1.5).smoothed(), [0.0, 1.0, 0.0, 1.5])


def test_long_curve_fits_thinned(monkeypatch):
    """The GP's hyperparameters are fitted on GP_FIT_POINTS points, the mean on all (how
    fast that is: benchmarks/curves_speed.py; no timing is asserted here)."""
    sizes = []
    argmax, mean = gp._lml_argmax, gp._posterior_mean

    def spy_fit(X, y):
        sizes.append(len(X))
        return argmax(X, y)

    def spy_mean(X, y, theta):
        sizes.append(len(X))
        return mean(X, y, theta)

    monkeypatch.setattr(gp, "_lml_argmax", spy_fit)
    monkeypatch.setattr(gp, "_posterior_mean", spy_mean)
    c, truth = noisy_curve(1000)
    s = c.smoothed()
    assert sizes == [curves.GP_FIT_POINTS, 1000]  # hyperparameters on GP_FIT_POINTS, mean on all
    assert np.sqrt(np.mean((s - truth) ** 2)) < 0.5 * np.sqrt(np.mean((c.scores - truth) ** 2))


def test_no_overlap_comparison_is_cached():
    """Repeated comparisons reuse the cached fits and give the same answer (how fast:
    benchmarks/curves_speed.py; no timing is asserted here)."""
    x = np.arange(30) * 200
    rng = np.random.default_rng(5)
    a = Curve(x, 5 + np.log1p(np.arange(30)) + rng.normal(0, 0.05, 30))
    b = Curve(x, 0.5 * np.log1p(np.arange(30)) + rng.normal(0, 0.05, 30))
    assert overlap(a, b) is None  # the 32-δ grid path
    first = best_score_diff(a, b)
    assert all(best_score_diff(a, b) == first for _ in range(20))


# ------------------------------------------------------------------ issue 12: speed-ups
def _random_curves(rng: np.random.Generator, m: int) -> list[Curve]:
    """Curves of every shape the comparisons branch on: empty, one point, ties, flat,
    rising, falling, overlapping and not, with and without a GP smoothing."""
    out = []
    for _ in range(m):
        n = int(rng.integers(0, 25))
        steps = int(rng.integers(0, 50)) * 10 + 10 * np.arange(n)
        kind = rng.integers(4)
        if kind == 0:
            y = np.cumsum(rng.normal(0.1, 1.0, n)) + rng.normal(0, 3)
        elif kind == 1:
            y = -np.exp(-np.arange(n) / rng.uniform(2, 20)) * rng.uniform(0.5, 2)
            y = y + rng.normal(0, 0.02, n)
        elif kind == 2:
            y = np.round(rng.normal(0, 1, n), 1)  # many ties
        else:
            y = np.full(n, float(rng.integers(3)))
        out.append(Curve(steps, y))
    return out


@pytest.mark.parametrize("smooth", [False, True])
def test_pairwise_best_score_diff_is_best_score_diff_bit_for_bit(smooth):
    rng = np.random.default_rng(0)
    for _ in range(3 if smooth else 25):
        cs = _random_curves(rng, 12)
        pairs = np.array([(i, j) for i in range(12) for j in range(12)])
        got = pairwise.pairwise_best_score_diff(cs, pairs, smooth=smooth)
        want = np.array([best_score_diff(cs[i], cs[j], smooth=smooth) for i, j in pairs])
        assert got.tolist() == want.tolist()


def test_pairwise_handles_diverged_curves_like_best_score_diff():
    a = C(0.1, 0.2, math.nan, 0.5)
    b = C(0.0, 0.3, 0.4, 0.45)
    got = pairwise.pairwise_best_score_diff([a, b], np.array([[0, 1], [1, 0]]), smooth=False)
    assert got.tolist() == [
        best_score_diff(a, b, smooth=False),
        best_score_diff(b, a, smooth=False),
    ]


@pytest.mark.parametrize("direct", [True, False])
def test_the_gp_fit_is_scikit_learns_bit_for_bit(direct, monkeypatch):
    """The written-out GP (curves._gp_fit) against GaussianProcessRegressor itself, with
    L-BFGS-B driven by hand (gp._Lbfgsb, SciPy >= 1.15) and through minimize."""
    from firepbt.core import gp

    if direct and not gp._scipy_direct():
        pytest.skip("SciPy < 1.15: no reverse-communication setulb to drive")
    monkeypatch.setitem(gp._DIRECT, "on", direct)
    rng = np.random.default_rng(1)
    for trial in range(24):
        n = int(rng.choice([3, 5, 11, 21, 31, 64, 65, 90]))
        steps = int(rng.integers(0, 100)) * 10 + 10 * np.arange(n)
        if trial % 3 == 0:
            y = -np.exp(-np.arange(n) / rng.uniform(2, 50)) + rng.normal(0, 0.02, n)
        elif trial % 3 == 1:
            y = np.cumsum(rng.normal(0, 1, n))
        else:
            y = np.round(rng.normal(0, 1, n), 1)
        mean, kernel = curves._gp_fit(steps, y)
        ref, ref_kernel = curves._gp_fit_sklearn(steps, y)
        assert mean.tobytes() == ref.tobytes(), (trial, n)
        assert kernel == ref_kernel


def test_lbfgsb_driven_by_hand_is_minimize_bit_for_bit(monkeypatch):
    """gp._Lbfgsb ends where scipy.optimize.minimize(method="L-BFGS-B") ends, to the last
    bit, on 200 marginal-likelihood fits of every curve shape (rising, noisy, rounded
    with ties, nearly exact), including ones that stop at a bound."""
    from firepbt.core import gp

    if not gp._scipy_direct():
        pytest.skip("SciPy < 1.15: no reverse-communication setulb to drive")
    rng = np.random.default_rng(7)
    cases = []
    for t in range(200):
        n = int(rng.integers(3, 80))
        steps = int(rng.integers(0, 100)) * 10 + 10 * np.arange(n)
        k = t % 4
        if k == 0:
            y = -np.exp(-np.arange(n) / rng.uniform(2, 50)) + rng.normal(0, 0.02, n)
        elif k == 1:
            y = np.cumsum(rng.normal(0, 1, n))
        elif k == 2:
            y = np.round(rng.normal(0, 1, n), 1)
        else:
            y = np.linspace(0, 1, n) ** 3 + rng.normal(0, 1e-6, n)
        cases.append((steps, y))
    monkeypatch.setitem(gp._DIRECT, "on", False)
    want = [gp._gp_fit(s, y) for s, y in cases]
    monkeypatch.setitem(gp._DIRECT, "on", True)
    got = [gp._gp_fit(s, y) for s, y in cases]
    for (a, ka), (b, kb) in zip(got, want, strict=True):
        assert a.tobytes() == b.tobytes() and ka == kb
    assert gp._DIRECT["on"]  # the hand-driven routine was used throughout (no fallback)
    at_bound = [k for _, k in want if k is not None and min(k[1:]) <= 1e-8 * 1.000001]
    assert at_bound  # the noise level's lower bound was reached at least once


def test_the_square_kernel_is_the_pairwise_one_bit_for_bit():
    """gp._kernel (every element of the square matrix) against scikit-learn's form
    (pairs i < j, then squareform), kernel and gradient, over sizes and hyperparameters
    across their bounds, on even and uneven steps."""
    from firepbt.core import gp

    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(1, 70))
        if trial % 2:
            x = np.sort(rng.uniform(0, 1, n))
        else:
            x = np.linspace(0.0, 1.0, n)
        X = x[:, None]
        theta = np.array([rng.uniform(-7, 7), rng.uniform(-7, 7), rng.uniform(-18.5, 2.4)])
        k, k_grad = gp._kernel(X, theta, True)
        ref, ref_grad = gp._kernel_pairwise(X, theta, True)
        assert k.tobytes() == ref.tobytes(), (trial, n)
        assert k_grad.shape == ref_grad.shape
        assert k_grad.tobytes() == ref_grad.tobytes(), (trial, n)
        assert gp._kernel(X, theta, False).tobytes() == ref.tobytes()


def test_gp_refit_zero_fits_at_every_smoothing_and_positive_reuses_the_kernel():
    rng = np.random.default_rng(2)
    y = -np.exp(-np.arange(40) / 15) + rng.normal(0, 0.02, 40)
    exact, reuse = Curve(), Curve(gp_refit=0.5)
    before = dict(curves.STATS)
    for i in range(40):
        for c in (exact, reuse):
            c.append(10 * i, y[i])
            c.smoothed()
    fits = curves.STATS["fits"] - before["fits"]
    conditioned = curves.STATS["conditioned"] - before["conditioned"]
    # exact: one fit per smoothing from 3 points on (38); reuse: a fit at 3 points, then
    # again whenever the curve grew by half since the last fit (3, 5, 8, 12, 18, 27, 41)
    assert fits == 38 + 6
    assert conditioned == 38 - 6
    assert reuse.smoothed().shape == (40,)
    # the kept-hyperparameter posterior mean stays close to the exact one here
    assert np.abs(reuse.smoothed() - exact.smoothed()).max() < 0.05


def test_fits_in_parallel_are_the_fits_of_smoothed():
    """fit_in_parallel caches, on each curve, the same arrays (bit for bit) and kernel as
    Curve.smoothed computes in this process; own-smoothing curves are left alone."""
    rng = np.random.default_rng(3)
    made = []
    for n in (5, 20, 70, 150):  # 70, 150: longer than GP_FIT_POINTS (thinned fit)
        steps = np.arange(n) * 10
        made.append((steps, np.log1p(steps) + rng.normal(0, 0.3, n)))
    made.append((np.arange(4), np.ones(4)))  # constant: its own smoothing
    serial = [Curve(s, y) for s, y in made]
    parallel = [Curve(s, y) for s, y in made]
    assert curves.fit_in_parallel(parallel, 2) == 4
    assert parallel[-1]._smoothed is None  # not fitted there (smoothed() returns its y)
    for a, b in zip(serial, parallel, strict=True):
        assert a.smoothed().tobytes() == b.smoothed().tobytes()
        assert a._kernel == b._kernel
    assert curves.fit_in_parallel(parallel, 2) == 0  # every fit is cached now
