"""The MNIST-1D and PPO benchmark trainables: exact copies, seeded determinism."""

import math

import pytest

pytest.importorskip("torch")


def _copy_is_exact(make, hp, steps):
    a, b = make(0), make(1)
    a.train(steps, hp)
    b.load_state_dict(a.state_dict())
    snapshot = a.state_dict()
    a.train(steps, hp)
    b.train(steps, hp)
    assert a.evaluate() == b.evaluate()
    c = make(2)
    c.load_state_dict(snapshot)  # the snapshot did not move when a trained on
    c.train(steps, hp)
    assert c.evaluate() == a.evaluate()


def test_mnist1d_copy_is_exact_and_seeded():
    pytest.importorskip("mnist1d")
    from firepbt.tasks.mnist1d import MNIST1D

    def make(seed):
        return MNIST1D(seed, num_samples=1000, hidden=16)

    _copy_is_exact(make, {"lr": 0.1}, 20)
    x, y = make(3), make(3)
    x.train(20, {"lr": 0.1})
    y.train(20, {"lr": 0.1})
    assert x.evaluate() == y.evaluate() and 0.0 <= x.test() <= 1.0
    z = make(3)
    z.train(50, {"lr": 1e6})
    assert math.isnan(z.evaluate())


def test_ppo_copy_is_exact_and_seeded():
    pytest.importorskip("gymnasium")
    from firepbt.tasks.ppo import PPO

    def make(seed):
        return PPO(seed, num_envs=2, rollout=16, epochs=1, minibatches=2)

    hp = {"lr": 1e-3, "ent_coef": 0.01}
    _copy_is_exact(make, hp, 3)
    x, y = make(3), make(3)
    x.train(3, hp)
    y.train(3, hp)
    assert x.evaluate() == y.evaluate() and x.test() == y.test() >= 8.0
