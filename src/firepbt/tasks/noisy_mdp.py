"""A random tabular MDP with noisy rewards, vectorised in NumPy: an RL task for PPO where
the learning-rate schedule can matter (issue 11 item 3).

CartPole and Acrobot have no learning-rate schedule to find at two-core scale (tuned
constant rates match or beat decaying ones, ``benchmarks/RESULTS.md``). What makes a
schedule matter on the noisy quadratic model is gradient noise: a high rate makes fast
progress to a noise floor, a low one has a lower floor but gets there slowly. This
environment gives reinforcement learning the same structure: the rewards are noisy, so
the policy-gradient estimates are, and its value gaps range from large (learnt at once)
to small (only learnt with many samples and small steps).

The task (fixed by ``task_seed``, the same for every experiment seed): ``states``
states, ``actions`` actions, a deterministic successor ``T[s, a]`` drawn uniformly, a mean
reward ``R[s, a]`` drawn from a standard normal scaled per state by a factor log-uniform
over ``[gap_min, 1]`` (the small-gap states are the ones that need precision), and episodes
of ``horizon`` steps from a uniform start state. A step's reward is ``R[s, a]`` plus
Gaussian noise of standard deviation ``noise``. The observation is the one-hot state.

:meth:`NoisyMDPVectorEnv.expected_return` gives the exact expected episode return of a
stationary policy (a ``states x actions`` table of probabilities), so a policy's quality
is measured without episode sampling noise; :meth:`optimal_return` is the best return of
any (time-dependent) policy, by backward induction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NoisyMDPVectorEnv"]


class NoisyMDPVectorEnv:
    """``num_envs`` copies of one random tabular MDP with noisy rewards, stepped together.

    Follows gymnasium's vector-env protocol as :class:`firepbt.tasks.ppo.PPO` uses it
    (``reset``, ``step``, ``single_observation_space``, ``single_action_space``) with
    gymnasium's next-step autoreset: the step after an episode's last returns the new
    episode's first observation, reward 0 and no termination.
    """

    def __init__(
        self,
        num_envs: int,
        states: int = 32,
        actions: int = 4,
        horizon: int = 16,
        noise: float = 1.0,
        gap_min: float = 0.03,
        task_seed: int = 0,
        max_episode_steps: int | None = None,
    ) -> None:
        from gymnasium import spaces

        if states < 1 or actions < 2 or horizon < 1:
            raise ValueError("NoisyMDP: states >= 1, actions >= 2 and horizon >= 1")
        if noise < 0 or not 0 < gap_min <= 1:
            raise ValueError("NoisyMDP: noise >= 0 and 0 < gap_min <= 1")
        self.num_envs, self.n_states, self.n_actions = int(num_envs), int(states), int(actions)
        # an episode is ``horizon`` steps; a shorter cap (``max_episode_steps``) cuts it
        self.horizon = int(min(horizon, max_episode_steps or horizon))
        self.noise = float(noise)
        task = np.random.default_rng(task_seed)
        self.next_state = task.integers(0, states, size=(states, actions))
        scale = np.exp(task.uniform(np.log(gap_min), 0.0, size=(states, 1)))
        self.mean_reward = task.standard_normal((states, actions)) * scale
        self.single_observation_space = spaces.Box(0.0, 1.0, (states,), np.float32)
        self.single_action_space = spaces.Discrete(actions)
        self._eye = np.eye(states, dtype=np.float32)
        self.rng = np.random.default_rng(0)
        self.state = np.zeros(num_envs, dtype=np.int64)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.pending_reset = np.zeros(num_envs, dtype=bool)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.state = self.rng.integers(0, self.n_states, size=self.num_envs)
        self.t[:] = 0
        self.pending_reset[:] = False
        return self._eye[self.state], {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        a = np.asarray(actions, dtype=np.int64)
        reward = self.mean_reward[self.state, a] + self.noise * self.rng.standard_normal(
            self.num_envs
        )
        self.state = self.next_state[self.state, a]
        self.t += 1
        restart = self.pending_reset
        reward = np.where(restart, 0.0, reward)
        fresh = self.rng.integers(0, self.n_states, size=self.num_envs)
        self.state = np.where(restart, fresh, self.state)
        self.t[restart] = 0
        trunc = self.t >= self.horizon
        self.pending_reset = trunc.copy()
        term = np.zeros(self.num_envs, dtype=bool)
        return self._eye[self.state], reward, term, trunc, {}

    def expected_return(self, probs: np.ndarray) -> float:
        """Exact expected episode return of the stationary policy ``probs[s, a]`` from a
        uniform start state."""
        probs = np.asarray(probs, dtype=np.float64)
        d = np.full(self.n_states, 1.0 / self.n_states)  # the state distribution at step t
        total = 0.0
        for _ in range(self.horizon):
            flow = d[:, None] * probs
            total += float((flow * self.mean_reward).sum())
            d = np.bincount(self.next_state.ravel(), flow.ravel(), minlength=self.n_states)
        return total

    def optimal_return(self) -> float:
        """The best expected return of any policy (time-dependent), by backward induction."""
        v = np.zeros(self.n_states)
        for _ in range(self.horizon):
            v = (self.mean_reward + v[self.next_state]).max(axis=1)
        return float(v.mean())
