"""The NoisyMDP environment (firepbt.tasks.noisy_mdp) and PPO on it."""

import numpy as np
import pytest

pytest.importorskip("gymnasium")


def _episodes(env, probs, rng):
    """Run one episode in every copy of ``env`` under ``probs``; the sampled returns."""
    obs, _ = env.reset(seed=7)
    total = np.zeros(env.num_envs)
    for _ in range(env.horizon):
        s = obs.argmax(axis=1)
        cum = probs[s].cumsum(axis=1)
        a = (rng.random(env.num_envs)[:, None] > cum[:, :-1]).sum(axis=1)
        obs, reward, term, trunc, _ = env.step(a)
        total += reward
    assert trunc.all() and not term.any()
    return total


def test_expected_return_is_the_mean_of_sampled_episodes():
    from firepbt.tasks.noisy_mdp import NoisyMDPVectorEnv

    env = NoisyMDPVectorEnv(20_000, states=12, actions=3, horizon=6, noise=1.0)
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=12)
    returns = _episodes(env, probs, rng)
    sem = returns.std() / np.sqrt(len(returns))
    assert abs(returns.mean() - env.expected_return(probs)) < 4 * sem
    # no policy beats backward induction; the greedy time-dependent policy reaches it
    assert env.optimal_return() >= env.expected_return(probs)
    best = np.eye(3)[env.mean_reward.argmax(axis=1)]
    assert env.optimal_return() >= env.expected_return(best)


def test_next_step_autoreset_and_seeded_noise():
    from firepbt.tasks.noisy_mdp import NoisyMDPVectorEnv

    a, b = NoisyMDPVectorEnv(3, horizon=2), NoisyMDPVectorEnv(3, horizon=2)
    oa, _ = a.reset(seed=1)
    ob, _ = b.reset(seed=1)
    assert (oa == ob).all() and oa.shape == (3, 32) and (oa.sum(axis=1) == 1).all()
    act = np.array([0, 1, 2])
    r1 = a.step(act)
    assert not r1[3].any()
    r2 = a.step(act)
    assert r2[3].all()  # truncated after horizon steps
    r3 = a.step(act)  # the reset step: the next episode's first observation, reward 0
    assert (r3[1] == 0).all() and not r3[3].any()
    for x, y in zip((r1, r2, r3), (b.step(act), b.step(act), b.step(act)), strict=True):
        assert (x[0] == y[0]).all() and (x[1] == y[1]).all()
    with pytest.raises(ValueError, match="gap_min"):
        NoisyMDPVectorEnv(1, gap_min=0.0)
    with pytest.raises(ValueError, match="actions"):
        NoisyMDPVectorEnv(1, actions=1)


def test_ppo_on_noisy_mdp_copies_exactly_and_measures_the_exact_return():
    pytest.importorskip("torch")
    from firepbt.tasks.ppo import PPO

    def make(seed):
        return PPO(seed, num_envs=2, rollout=16, epochs=1, minibatches=2, env="NoisyMDP",
                   env_args={"noise": 3.0, "states": 8})  # fmt: skip

    hp = {"lr": 3e-3, "ent_coef": 0.01}
    a, b = make(0), make(1)
    a.train(3, hp)
    b.load_state_dict(a.state_dict())
    a.train(3, hp)
    b.train(3, hp)
    assert a.evaluate() == b.evaluate() and a.test("expected") == b.test("expected")
    assert a.obs_dim == 8 and a.n_actions == 4
    assert a.env.optimal_return() >= a.test("expected") == a.test("expected")
    # sampled episodes estimate the same quantity (noisy: 64 episodes of noise 3)
    c = PPO(0, num_envs=2, rollout=16, epochs=1, minibatches=2, env="NoisyMDP",
            env_args={"noise": 3.0, "states": 8}, test_episodes=64)  # fmt: skip
    c.load_state_dict(a.state_dict())
    assert abs(c.test("sampled") - c.test("expected")) < 4 * 3.0 * 4 / 8
    with pytest.raises(ValueError, match="expected"):
        PPO(0, num_envs=2, rollout=16).test("expected")
    with pytest.raises(ValueError, match="env_args"):
        PPO(0, env="CartPole-v1", env_args={"noise": 1.0})
