"""The noisy LQR with a policy-gradient agent (firepbt.tasks.lqr): issue 11's RL task with a
learning-rate schedule to find."""

import math

import numpy as np
import pytest

from firepbt.tasks.lqr import LQRPolicyGradient, expected_return, optimal_return


def test_expected_return_matches_monte_carlo():
    """The closed form equals the mean return of many sampled episodes (within 4 s.e.)."""
    net = LQRPolicyGradient(0, envs=4000)
    net.K = np.random.default_rng(1).normal(0.0, 0.3, net.K.shape)
    _, _, rs = net._episodes()
    returns = rs.sum(axis=0)
    se = returns.std() / math.sqrt(returns.size)
    assert abs(returns.mean() - net.test()) < 4 * se
    assert net.test() == expected_return(net, net.K)


def test_policy_gradient_is_unbiased():
    """The mean of many one-iteration gradient steps (lr 1, no momentum yet: the step is
    the clipped gradient) points along the exact gradient of the expected return."""
    net = LQRPolicyGradient(0, envs=2000, max_grad_norm=1e12)
    K0 = np.random.default_rng(2).normal(0.0, 0.2, net.K.shape)
    steps = []
    for s in range(20):
        a = LQRPolicyGradient(s, envs=2000, max_grad_norm=1e12)
        a.K = K0.copy()
        a.train(1, {"lr": 1.0})
        steps.append(a.K - K0)
    est = np.mean(steps, axis=0)
    eps = 1e-5
    exact = np.zeros_like(K0)
    for i in np.ndindex(K0.shape):
        d = np.zeros_like(K0)
        d[i] = eps
        exact[i] = (expected_return(net, K0 + d) - expected_return(net, K0 - d)) / (2 * eps)
    cos = float((est * exact).sum() / (np.linalg.norm(est) * np.linalg.norm(exact)))
    assert cos > 0.95, cos


def test_training_approaches_the_optimum_and_a_too_high_rate_does_not():
    best = optimal_return()
    start = LQRPolicyGradient(0).test()
    net = LQRPolicyGradient(0)
    net.train(300, {"lr": 5e-5})
    assert start < net.test() < best
    assert best - net.test() < 0.2 * (best - start)  # most of the way there
    wild = LQRPolicyGradient(0)
    wild.train(300, {"lr": 1e-2})
    assert not wild.test() > net.test()  # far too high: worse (or diverged, -inf)


def test_deterministic_by_seed_and_state_round_trip():
    a, b, c = LQRPolicyGradient(3), LQRPolicyGradient(3), LQRPolicyGradient(4)
    for net in (a, b, c):
        net.train(20, {"lr": 5e-5})
    assert a.test() == b.test() and a.evaluate() == b.evaluate()
    assert a.test() != c.test()
    d = LQRPolicyGradient(9)
    d.load_state_dict(a.state_dict())
    a.train(10, {"lr": 5e-5})
    d.train(10, {"lr": 5e-5})
    assert d.test() == a.test() and d.evaluate() == a.evaluate()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_both_optimizers_learn(optimizer):
    lr = 5e-5 if optimizer == "sgd" else 3e-3
    net = LQRPolicyGradient(0, optimizer=optimizer)
    before = net.test()
    net.train(100, {"lr": lr})
    assert net.test() > before


def test_q_is_the_mean_of_the_last_window_training_episodes():
    net = LQRPolicyGradient(0, window=20)
    assert net.evaluate() == net.test()  # before any episode: the policy's own value
    net.train(3, {"lr": 0.0})  # 48 episodes of K = 0
    assert len(net.returns) == 20
    assert net.evaluate() == pytest.approx(float(np.mean(net.returns)))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"envs": 1}, "envs"),
        ({"sigma": 0.0}, "sigma"),
        ({"q_min": 2.0}, "q_min"),
        ({"eigs": (1.0, 0.5)}, "eigs"),
        ({"states": 0}, "states"),
        ({"r": -1.0}, "r out of range"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LQRPolicyGradient(0, **kwargs)


def test_negative_learning_rate_is_refused():
    with pytest.raises(ValueError, match="lr"):
        LQRPolicyGradient(0).train(1, {"lr": -1.0})


def test_a_diverged_policy_scores_minus_infinity_at_once():
    """A rate far too high gives huge but finite returns (the steps are bounded: Adam's
    by lr, clipped SGD's by lr x max_grad_norm x 10); a policy that did overflow (NaN)
    scores -inf, even before its next episodes."""
    net = LQRPolicyGradient(0)
    net.train(5, {"lr": 1e-4})
    assert math.isfinite(net.evaluate())
    net.K[0, 0] = math.nan
    assert net.evaluate() == -math.inf and net.test() == -math.inf
    net.train(1, {"lr": 1e-4})
    assert net.evaluate() == -math.inf
