"""The stiff quadratic (firepbt.tasks.stiff): the task where greedy PBT is right."""

import math

import numpy as np
import pytest

from firepbt.tasks.stiff import Stiff

GRID = [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]


def run(lrs, interval=50, **kw):
    net = Stiff(0, dim=100, **kw)
    for lr in lrs:
        net.train(interval, {"lr": lr})
    return net.test()


def test_deterministic_training_noise_only_in_evaluate_and_state_round_trip():
    a, b = Stiff(1, dim=50, noise=0.1), Stiff(2, dim=50, noise=0.1)
    for net in (a, b):
        net.train(30, {"lr": 0.02})
    assert a.test() == b.test() > 0  # the loss has dropped: positive decades
    assert a.evaluate() != a.test()
    c = Stiff(3, dim=50, noise=0.1)
    c.load_state_dict(a.state_dict())
    assert c.evaluate() == a.evaluate() and c.test() == a.test()


def test_divergence_scores_minus_infinity():
    net = Stiff(0, dim=10)
    net.train(20, {"lr": 1.0})  # far above the stable rate at the start (a = 30)
    assert net.test() == -math.inf and net.evaluate() == -math.inf


def test_greedy_choice_beats_every_constant_rate():
    """Picking, every interval, the rate that is best right now beats every constant."""
    greedy = Stiff(0, dim=100)
    for _ in range(10):
        best = None
        for lr in GRID:
            trial = Stiff(0, dim=100)
            trial.load_state_dict(greedy.state_dict())
            trial.train(50, {"lr": lr})
            if best is None or trial.test() > best[0]:
                best = (trial.test(), trial.state_dict())
        greedy.load_state_dict(best[1])
    constants = [run([lr] * 10) for lr in GRID]
    assert greedy.test() > max(c for c in constants if math.isfinite(c)) + 0.5


@pytest.mark.parametrize("bad", [{"dim": 0}, {"noise": -1.0}])
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        Stiff(0, **bad)


def test_bad_learning_rate():
    with pytest.raises(ValueError, match="lr"):
        Stiff(0, dim=5).train(1, {"lr": float("nan")})
    assert np.isfinite(Stiff(0, dim=5).test())
