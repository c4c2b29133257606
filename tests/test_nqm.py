"""The noisy quadratic model benchmark: the trainable and its reference schedules."""

from __future__ import annotations

import copy
import math
import pickle
import warnings

import numpy as np
import pytest

from firepbt.tasks.nqm import (
    NQM,
    best_constant_lr,
    best_piecewise_schedule,
    final_loss,
    references,
    schedule_segments,
    tuned_cosine,
)


def simulate(lrs, dim, batch_size=4.0):
    """Independent reference: the NQM recursion applied one SGD step at a time."""
    h = 1.0 / np.arange(1, dim + 1)
    s = np.ones(dim)
    for steps, lr in lrs:
        for _ in range(steps):
            s = (1.0 - lr * h) ** 2 * s + lr**2 * h / batch_size
    return 0.5 * float(h @ s)


def replay(segments, **args):
    """Train an NQM trainable along firepbt schedule segments; return its exact loss."""
    net = NQM(seed=0, **args)
    for seg in segments:
        net.train(seg["end"] - seg["start"], seg["hparams"])
    return net.test()


@pytest.mark.parametrize("lr", [1e-6, 0.01, 0.3, 1.0, 1.5, 2.0])
def test_closed_form_equals_single_steps(lr):
    dim, k = 50, 37
    bulk, single = NQM(0, dim=dim), NQM(0, dim=dim)
    bulk.train(k, {"lr": lr})
    for _ in range(k):
        single.train(1, {"lr": lr})
    h = 1.0 / np.arange(1, dim + 1)
    s = np.ones(dim)
    for _ in range(k):
        s = (1.0 - lr * h) ** 2 * s + lr**2 * h / 4.0
    np.testing.assert_allclose(bulk.s, s, rtol=1e-10, atol=0)
    np.testing.assert_allclose(single.s, s, rtol=1e-12, atol=0)
    assert bulk.test() == pytest.approx(0.5 * float(h @ s), rel=1e-10)


@pytest.mark.parametrize("start", ["ones", "zeros"])
def test_closed_form_many_steps_tiny_lr_is_accurate(start):
    # a = (1 - lr h)^2 is within 1e-10 of 1 for most dimensions: the naive geometric sum
    # (1 - a^k) / (1 - a) would lose digits here (visible from s = 0, where it is all of s)
    dim, k, lr = 10_000, 2_000, 1e-7
    net = NQM(0, dim=dim)
    s0 = np.ones(dim) if start == "ones" else np.zeros(dim)
    net.load_state_dict({"s": s0, "rng": net.state_dict()["rng"]})
    net.train(k, {"lr": lr})
    h = 1.0 / np.arange(1, dim + 1)
    s = s0.copy()
    for _ in range(k):
        s = (1.0 - lr * h) ** 2 * s + lr**2 * h / 4.0
    np.testing.assert_allclose(net.s, s, rtol=1e-9, atol=0)


def test_initial_loss_and_defaults():
    net = NQM(seed=3)
    assert net.dim == 10_000 and net.batch_size == 4 and net.noise == 0.0
    h = 1.0 / np.arange(1, 10_001)
    assert net.test() == pytest.approx(0.5 * h.sum(), rel=1e-12)
    assert net.evaluate() == net.test()


def test_loss_decreases_under_a_sensible_lr():
    net = NQM(0, dim=1000)
    losses = [net.test()]
    for _ in range(20):
        net.train(50, {"lr": 0.1})
        losses.append(net.test())
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] < 0.5 * losses[0]


def test_zero_noise_evaluate_is_exact():
    net = NQM(7, dim=200, noise=0.0)
    net.train(30, {"lr": 0.2})
    assert [net.evaluate() for _ in range(5)] == [net.test()] * 5


def test_noise_is_multiplicative_with_the_right_spread():
    noise, n = 0.1, 4000
    net = NQM(12345, dim=200, noise=noise)
    net.train(100, {"lr": 0.2})
    exact = net.test()
    ratios = np.array([net.evaluate() for _ in range(n)]) / exact
    assert net.test() == exact  # evaluating does not train
    z = (ratios - 1.0) / noise
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert 0.93 < z.std() < 1.07
    # the spread scales with the loss (multiplicative), not a fixed additive noise
    net.train(1000, {"lr": 0.2})
    later = np.array([net.evaluate() for _ in range(n)]) / net.test()
    assert 0.93 < (later - 1.0).std() / noise < 1.07


def test_seed_drives_only_the_noise_stream():
    a, b, c = (NQM(s, dim=100, noise=0.05) for s in (1, 1, 2))
    for net in (a, b, c):
        net.train(20, {"lr": 0.3})
    assert a.test() == b.test() == c.test()
    ea, eb, ec = ([n.evaluate() for _ in range(3)] for n in (a, b, c))
    assert ea == eb and ea != ec


def test_state_round_trip_restores_weights_and_noise_stream():
    src = NQM(0, dim=100, noise=0.1)
    src.train(40, {"lr": 0.5})
    src.evaluate()
    state = pickle.loads(pickle.dumps(src.state_dict()))
    dst = NQM(99, dim=100, noise=0.1)
    dst.load_state_dict(state)
    assert dst.test() == src.test()
    assert [dst.evaluate() for _ in range(5)] == [src.evaluate() for _ in range(5)]
    dst.train(10, {"lr": 0.2})
    src.train(10, {"lr": 0.2})
    assert dst.evaluate() == src.evaluate()


def test_state_dict_is_an_independent_copy():
    net = NQM(0, dim=100, noise=0.1)
    net.train(10, {"lr": 0.5})
    state = net.state_dict()
    snapshot = copy.deepcopy(state)
    net.train(10, {"lr": 0.5})
    net.evaluate()
    np.testing.assert_array_equal(state["s"], snapshot["s"])
    assert state["rng"] == snapshot["rng"]
    # loading does not alias the given state either
    other = NQM(1, dim=100, noise=0.1)
    other.load_state_dict(state)
    other.train(10, {"lr": 0.5})
    other.evaluate()
    np.testing.assert_array_equal(state["s"], snapshot["s"])
    assert state["rng"] == snapshot["rng"]
    # mutating a returned or a loaded state in place does not reach the trainables
    loss, other_loss = net.test(), other.test()
    fresh = net.state_dict()
    fresh["s"][:] = 7.0
    fresh["rng"]["state"]["state"] = 0
    state["s"][:] = 7.0
    state["rng"]["state"]["state"] = 0
    assert net.test() == loss and other.test() == other_loss
    given = net.state_dict()
    twin = NQM(5, dim=100, noise=0.1)
    twin.load_state_dict(given)
    given["s"][:] = 7.0
    given["rng"]["state"]["state"] = 0
    assert twin.test() == net.test()
    assert net.evaluate() == twin.evaluate()


def test_load_state_dict_checks_the_dimension():
    with pytest.raises(ValueError):
        NQM(0, dim=10).load_state_dict(NQM(0, dim=11).state_dict())


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_divergence_gives_non_finite_loss_without_raising(noise):
    net = NQM(0, dim=1000, noise=noise)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy overflow warnings would fail the test
        net.train(10_000, {"lr": 2.5})
        assert not math.isfinite(net.evaluate())
        assert not math.isfinite(net.test())
        for lr in (2.5, 1.0, 0.1):  # training on from a diverged state does not raise
            net.train(100, {"lr": lr})
            net.train(1, {"lr": lr})
        assert not math.isfinite(net.evaluate())


def test_lr_max_clips_and_bad_lrs_raise():
    clipped, plain = NQM(0, dim=100, lr_max=0.5), NQM(0, dim=100)
    clipped.train(100, {"lr": 2.5})
    plain.train(100, {"lr": 0.5})
    assert clipped.test() == plain.test()
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError):
            NQM(0, dim=10).train(1, {"lr": bad})


def test_is_a_firepbt_trainable():
    from firepbt.core.trainable import Trainable, load_trainable

    assert load_trainable("firepbt.tasks.nqm:NQM") is NQM
    assert load_trainable("firepbt.benchmarks.nqm:NQM") is NQM  # the name before 0.2
    assert isinstance(NQM(0, dim=10), Trainable)


# --------------------------------------------------------------------------- references


def test_final_loss_matches_step_by_step_and_the_trainable():
    pieces = [(30, 0.8), (1, 0.05), (25, 0.3), (0, 5.0), (44, 0.01)]
    assert final_loss(pieces, dim=300) == pytest.approx(simulate(pieces, 300), rel=1e-10)
    assert final_loss(pieces, dim=300) == pytest.approx(
        replay(schedule_segments(pieces), dim=300), rel=1e-12
    )
    assert final_loss([], dim=300) == pytest.approx(0.5 * sum(1 / i for i in range(1, 301)))
    assert final_loss([(10, 0.1)], dim=300, batch_size=1) > final_loss([(10, 0.1)], dim=300)


def test_schedule_segments_format():
    assert schedule_segments([(3, 0.5), (2, 0.1)]) == [
        {"start": 0, "end": 3, "hparams": {"lr": 0.5}},
        {"start": 3, "end": 5, "hparams": {"lr": 0.1}},
    ]


def test_best_constant_lr_against_brute_force_grid():
    steps, dim = 300, 200
    lrs = np.geomspace(1e-4, 1.0, 600)
    h = 1.0 / np.arange(1, dim + 1)
    s = np.ones((len(lrs), dim))
    x = lrs[:, None] * h[None, :]
    for _ in range(steps):
        s = (1.0 - x) ** 2 * s + x * lrs[:, None] / 4.0
    grid_losses = 0.5 * s @ h
    i = int(np.argmin(grid_losses))
    lr, loss = best_constant_lr(steps, lr_max=1.0, dim=dim)
    assert loss <= grid_losses[i] + 1e-12
    assert loss == pytest.approx(grid_losses[i], rel=1e-4)
    assert lrs[i - 1] <= lr <= lrs[i + 1]
    assert loss == pytest.approx(simulate([(steps, lr)], dim), rel=1e-10)


def test_best_constant_lr_respects_the_cap():
    # with a cap well below the optimum, the best constant lr is the cap
    uncapped, _ = best_constant_lr(300, dim=200)
    lr, loss = best_constant_lr(300, lr_max=uncapped / 4, dim=200)
    assert lr == pytest.approx(uncapped / 4, rel=1e-4)
    assert loss == pytest.approx(final_loss([(300, uncapped / 4)], dim=200), rel=1e-6)


def test_reference_ordering_and_replay():
    steps, dim = 1000, 1000
    refs = references(steps, 1.0, dim=dim, pieces=5, cosine_pieces=50)
    const, cos, piece = refs["constant"], refs["cosine"], refs["piecewise"]
    assert piece["loss"] <= cos["loss"] <= const["loss"]
    assert piece["loss"] < 0.95 * const["loss"]
    for ref in refs.values():
        segs = ref["schedule"]
        assert segs[0]["start"] == 0 and segs[-1]["end"] == steps
        assert all(a["end"] == b["start"] for a, b in zip(segs, segs[1:], strict=False))
        assert all(0 <= seg["hparams"]["lr"] <= 1.0 + 1e-12 for seg in segs)
        assert replay(segs, dim=dim) == pytest.approx(ref["loss"], rel=1e-9)
    assert len(piece["schedule"]) == 5 and len(cos["schedule"]) == 50
    assert const["schedule"][0]["hparams"]["lr"] == const["lr"]
    assert cos["schedule"][0]["hparams"]["lr"] < cos["peak_lr"]
    lrs = [seg["hparams"]["lr"] for seg in cos["schedule"]]
    assert all(b < a for a, b in zip(lrs, lrs[1:], strict=False))


def test_tuned_cosine_peak_is_optimal_and_near_exact_per_step():
    steps, dim, batch = 400, 300, 1.0  # a setting whose best peak lies inside (1e-4, 1)
    peak, loss = tuned_cosine(steps, lr_max=1.0, dim=dim, batch_size=batch, pieces=40)
    assert 0.3 < peak < 0.95
    for other in (0.5 * peak, 0.9 * peak, 1.1 * peak, 1.0):
        mids = [10 * j + 5 for j in range(40)]
        sched = [(10, other * 0.5 * (1 + math.cos(math.pi * m / steps))) for m in mids]
        assert final_loss(sched, dim=dim, batch_size=batch) > loss
    exact_peak, exact_loss = tuned_cosine(
        steps, lr_max=1.0, dim=dim, batch_size=batch, pieces=steps
    )
    assert exact_loss == pytest.approx(loss, rel=1e-2)
    exact = [(1, exact_peak * 0.5 * (1 + math.cos(math.pi * t / steps))) for t in range(steps)]
    assert simulate(exact, dim, batch) == pytest.approx(exact_loss, rel=1e-9)


def test_best_piecewise_schedule_beats_its_starts():
    steps, dim = 600, 300
    sched, loss = best_piecewise_schedule(steps, 3, lr_max=1.0, dim=dim)
    assert [n for n, _ in sched] == [200, 200, 200]
    assert all(1e-4 * (1 - 1e-9) <= lr <= 1.0 + 1e-12 for _, lr in sched)
    assert loss == pytest.approx(simulate(sched, dim), rel=1e-9)
    assert sched[0][1] >= sched[-1][1]  # the optimum decays
    # no coarse 3-piece schedule on a grid does better
    grid = np.geomspace(1e-3, 1.0, 12)
    best_grid = min(
        final_loss([(200, a), (200, b), (200, c)], dim=dim)
        for a in grid
        for b in grid
        for c in grid
    )
    assert loss <= best_grid + 1e-12
    # uneven split: lengths still add up
    sched7, _ = best_piecewise_schedule(100, 7, dim=20)
    assert sum(n for n, _ in sched7) == 100 and len(sched7) == 7
