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


@pytest.mark.parametrize("env", ["CartPole-v1", "Acrobot-v1"])
def test_ppo_copy_is_exact_and_seeded(env):
    pytest.importorskip("gymnasium")
    from firepbt.tasks.ppo import PPO

    def make(seed):
        return PPO(seed, num_envs=2, rollout=16, epochs=1, minibatches=2, env=env)

    hp = {"lr": 1e-3, "ent_coef": 0.01}
    _copy_is_exact(make, hp, 3)
    x, y = make(3), make(3)
    x.train(3, hp)
    y.train(3, hp)
    assert x.evaluate() == y.evaluate() and x.test() == y.test()
    if env == "CartPole-v1":
        assert x.test() >= 8.0
    else:  # Acrobot: -1 per step until the goal, at most 500 steps
        assert -500.0 <= x.test() <= 0.0 and x.n_actions == 3 and x.obs_dim == 6
        # no episode has ended after 3 x 16 steps: Q is initial_score (0 by default)
        assert x.evaluate() == 0.0
        z = PPO(3, num_envs=2, rollout=16, epochs=1, minibatches=2, env=env, initial_score=-500)
        z.train(3, hp)
        assert z.evaluate() == -500.0


def test_ppo_draws_every_action_of_a_three_action_environment_by_its_probability():
    """The inverse-CDF draw of the general case (Acrobot's 3 actions)."""
    pytest.importorskip("gymnasium")
    import torch

    from firepbt.tasks.ppo import PPO

    net = PPO(0, num_envs=2, rollout=16, epochs=1, minibatches=2, env="Acrobot-v1")
    probs = torch.tensor([[0.2, 0.5, 0.3]]).repeat(6, 1)
    u = torch.tensor([0.0, 0.19, 0.21, 0.69, 0.71, 0.999])
    assert net._draw(probs, u).tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="continuous"):
        PPO(0, env="Pendulum-v1")


def test_ppo_sampled_test_is_deterministic_and_leaves_training_alone():
    """test("sampled") runs the policy itself (the objective Q measures) with its own
    fixed-seed draws: the same network gives the same value, and testing does not move
    the trainable's generator (a copied worker still continues exactly)."""
    pytest.importorskip("gymnasium")
    from firepbt.tasks.ppo import PPO

    hp = {"lr": 3e-3, "ent_coef": 0.01}
    a, b = (PPO(5, num_envs=2, rollout=16, epochs=1, minibatches=2, test_episodes=4)
            for _ in range(2))  # fmt: skip
    a.train(5, hp)
    b.train(5, hp)
    s = a.test("sampled")
    assert s == a.test("sampled") == b.test("sampled") >= 8.0
    # the same fixed-seed episodes, cut later: never shorter
    assert a.test("greedy", max_episode_steps=2000) >= a.test("greedy")
    a.train(2, hp)
    b.train(2, hp)
    assert a.evaluate() == b.evaluate()
    with pytest.raises(ValueError, match="policy"):
        a.test("argmax")


def test_ppo_state_survives_pickling_as_a_checkpoint_does():
    """Checkpoints pickle worker states: the vector environments included."""
    pytest.importorskip("gymnasium")
    import pickle

    from firepbt.tasks.ppo import PPO

    hp = {"lr": 1e-3, "ent_coef": 0.01}
    for env in ("CartPole-v1", "Acrobot-v1"):
        a = PPO(0, num_envs=2, rollout=16, epochs=1, minibatches=2, env=env)
        a.train(2, hp)
        b = PPO(1, num_envs=2, rollout=16, epochs=1, minibatches=2, env=env)
        b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
        a.train(3, hp)
        b.train(3, hp)
        assert a.evaluate() == b.evaluate() and a.test("sampled") == b.test("sampled")
