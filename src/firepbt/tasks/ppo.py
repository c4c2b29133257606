"""A compact PPO (Schulman et al. 2017) on gymnasium's classic control, as a firepbt trainable.

One firepbt *step* is one PPO iteration: ``rollout`` environment steps in each of
``num_envs`` vectorised environments (``env``: CartPole-v1 by default, on gymnasium's
numpy ``CartPoleVectorEnv``; any other discrete-action environment id, such as
``"Acrobot-v1"``, on gymnasium's synchronous vector env; ``"NoisyMDP"``, the random
tabular MDP with noisy rewards of :mod:`firepbt.tasks.noisy_mdp`, its settings in
``env_args``), then ``epochs`` passes of clipped-objective minibatch updates (Adam). The tuned
hyperparameters are ``lr`` (Adam's learning rate) and ``ent_coef`` (the entropy bonus).

Q (:meth:`PPO.evaluate`, maximised) is the mean undiscounted return of the last
``window`` training episodes, as PBT does for RL (the paper's DM Lab / Atari setting);
:meth:`PPO.test` runs the greedy policy (argmax action) for ``test_episodes`` episodes on
fixed seeds; ``test("sampled")`` runs the policy itself, its actions drawn from a fixed-seed
generator, which is what Q and the paper's RL objective (the average episode return of
the agent) measure. The two can rank schedules differently: on CartPole the greedy
policy of a slowly trained network often balances to the 500-step cap while the policy
it was trained as still falls early (``benchmarks/RESULTS.md``, issue 11).
:meth:`PPO.state_dict` holds the networks, Adam's moments, the environments (deep copy:
the vector environments are plain Python and numpy), the observation, the generator and the
recent returns, so a copied worker continues exactly as its source would. Needs the
``bench`` extra (``torch==2.13.0``, ``gymnasium``).
"""

from __future__ import annotations

import copy
import math
from collections import deque
from typing import Any

import numpy as np

__all__ = ["PPO"]


class PPO:
    """PPO on a discrete-action gymnasium environment, CartPole-v1 by default
    (hyperparameters ``lr``, ``ent_coef``; Q: mean episode return)."""

    accepted_hparams = ("lr", "ent_coef")  # the search space may name only these

    def __init__(
        self,
        seed: int,
        num_envs: int = 8,
        rollout: int = 32,
        epochs: int = 4,
        minibatches: int = 4,
        hidden: int = 64,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip: float = 0.2,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        window: int = 20,
        test_episodes: int = 8,
        env: str = "CartPole-v1",
        initial_score: float = 0.0,
        env_args: dict[str, Any] | None = None,
    ) -> None:
        import torch

        torch.set_num_threads(1)
        self.torch = torch
        self.cfg: dict[str, Any] = dict(
            rollout=rollout,
            epochs=epochs,
            minibatches=minibatches,
            gamma=gamma,
            gae_lambda=gae_lambda,
            clip=clip,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            test_episodes=test_episodes,
        )
        self.num_envs = int(num_envs)
        self.env_id = str(env)
        self.env_args = dict(env_args or {})
        if self.env_args and self.env_id != "NoisyMDP":
            raise ValueError(f"env_args: only for env 'NoisyMDP', not {env!r}")
        self.initial_score = float(initial_score)
        self.env = self._make_env(self.num_envs)
        space = self.env.single_action_space
        if not hasattr(space, "n"):
            raise ValueError(f"env: {env!r} has a continuous action space; PPO here needs discrete")
        self.obs_dim = int(np.prod(self.env.single_observation_space.shape))
        self.n_actions = int(space.n)
        gen = torch.Generator().manual_seed(int(seed) % (2**63))

        def mlp(out: int, gain: float) -> Any:
            net = torch.nn.Sequential(
                torch.nn.Linear(self.obs_dim, hidden),
                torch.nn.Tanh(),
                torch.nn.Linear(hidden, hidden),
                torch.nn.Tanh(),
                torch.nn.Linear(hidden, out),
            )
            with torch.no_grad():
                for i, layer in enumerate(net):
                    if isinstance(layer, torch.nn.Linear):
                        g = gain if i == len(net) - 1 else math.sqrt(2)
                        torch.nn.init.orthogonal_(layer.weight, g, generator=gen)
                        layer.bias.zero_()
            return net

        self.actor = mlp(self.n_actions, 0.01)
        self.critic = mlp(1, 1.0)
        self.params = list(self.actor.parameters()) + list(self.critic.parameters())
        self.opt = torch.optim.Adam(self.params, lr=2.5e-4, eps=1e-5)
        self.rng = np.random.default_rng(seed)
        self.obs, _ = self.env.reset(seed=int(self.rng.integers(2**31)))
        self.prev_done = np.zeros(self.num_envs, dtype=bool)
        self.ep_return = np.zeros(self.num_envs)
        self.returns: deque[float] = deque(maxlen=int(window))

    def _make_env(self, n: int, max_episode_steps: int | None = None) -> Any:
        """``n`` vectorised copies of ``env`` (next-step autoreset, as the rollout expects)."""
        if self.env_id == "CartPole-v1":
            from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

            return CartPoleVectorEnv(num_envs=n, max_episode_steps=max_episode_steps or 500)
        if self.env_id == "NoisyMDP":
            from firepbt.tasks.noisy_mdp import NoisyMDPVectorEnv

            return NoisyMDPVectorEnv(n, max_episode_steps=max_episode_steps, **self.env_args)
        import functools

        import gymnasium
        from gymnasium.vector import SyncVectorEnv

        # gymnasium.make_vec's "sync" mode, with a picklable constructor (a checkpoint
        # pickles the environments with the rest of the state)
        kw: dict[str, Any] = {}
        if max_episode_steps is not None:
            kw["max_episode_steps"] = int(max_episode_steps)
        return SyncVectorEnv([functools.partial(gymnasium.make, self.env_id, **kw)] * n)

    def _draw(self, probs: Any, u: Any) -> Any:
        """Inverse-CDF draw of one action per row of ``probs`` from uniforms ``u`` (with two
        actions exactly CartPole's former ``(u > p_0)``: the first cumulative sum is p_0)."""
        below = self.torch.cumsum(probs, dim=1)[:, :-1]
        return (u[:, None] > below).sum(dim=1)

    # -- acting ------------------------------------------------------------------------

    def _policy(self, obs: np.ndarray) -> Any:
        torch = self.torch
        logits = self.actor(torch.as_tensor(obs, dtype=torch.float32))
        return torch.distributions.Categorical(logits=logits)

    def _collect(self) -> dict[str, Any]:
        torch = self.torch
        T, N = self.cfg["rollout"], self.num_envs
        obs_b = np.zeros((T, N, self.obs_dim), dtype=np.float32)
        act_b = np.zeros((T, N), dtype=np.int64)
        logp_b = np.zeros((T, N), dtype=np.float32)
        rew_b = np.zeros((T, N), dtype=np.float32)
        done_b = np.zeros((T, N), dtype=np.float32)
        valid_b = np.zeros((T, N), dtype=np.float32)
        with torch.no_grad():
            for t in range(T):
                obs_b[t] = self.obs
                valid_b[t] = ~self.prev_done  # next-step autoreset: this step only resets
                dist = self._policy(self.obs)
                u = torch.as_tensor(self.rng.random(N), dtype=torch.float32)
                action = self._draw(dist.probs, u)  # inverse-CDF draw from our generator
                act_b[t] = action.numpy()
                logp_b[t] = dist.log_prob(action).numpy()
                self.obs, reward, term, trunc, _ = self.env.step(act_b[t])
                rew_b[t] = reward * valid_b[t]
                done = np.logical_or(term, trunc)
                done_b[t] = done
                self.ep_return += rew_b[t]
                for i in np.flatnonzero(done & ~self.prev_done):
                    self.returns.append(float(self.ep_return[i]))
                    self.ep_return[i] = 0.0
                self.prev_done = done
            values = self.critic(torch.as_tensor(obs_b)).squeeze(-1).numpy()
            last_value = self.critic(torch.as_tensor(self.obs, dtype=torch.float32)).squeeze(-1)
        adv = np.zeros((T, N), dtype=np.float32)
        gae = np.zeros(N, dtype=np.float32)
        g, lam = self.cfg["gamma"], self.cfg["gae_lambda"]
        next_value = last_value.numpy()
        for t in reversed(range(T)):
            nonterminal = 1.0 - done_b[t]
            delta = rew_b[t] + g * next_value * nonterminal - values[t]
            gae = delta + g * lam * nonterminal * gae
            adv[t] = gae
            next_value = values[t]
        return {
            "obs": obs_b.reshape(T * N, self.obs_dim),
            "act": act_b.reshape(-1),
            "logp": logp_b.reshape(-1),
            "adv": adv.reshape(-1),
            "ret": (adv + values).reshape(-1),
            "valid": valid_b.reshape(-1),
        }

    # -- the trainable -----------------------------------------------------------------

    def train(self, steps: int, hparams: dict[str, Any]) -> None:
        torch = self.torch
        for group in self.opt.param_groups:
            group["lr"] = float(hparams["lr"])
        ent_coef = float(hparams["ent_coef"])
        c = self.cfg
        for _ in range(int(steps)):
            batch = self._collect()
            keep = batch["valid"] > 0
            b = {k: torch.as_tensor(v[keep]) for k, v in batch.items() if k != "valid"}
            n = int(keep.sum())
            size = max(1, n // c["minibatches"])
            for _ in range(c["epochs"]):
                order = torch.as_tensor(self.rng.permutation(n))
                for start in range(0, n - size + 1, size):
                    idx = order[start : start + size]
                    dist = self._policy(b["obs"][idx])
                    ratio = torch.exp(dist.log_prob(b["act"][idx]) - b["logp"][idx])
                    adv = b["adv"][idx]
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                    pg = -torch.min(
                        ratio * adv, torch.clamp(ratio, 1 - c["clip"], 1 + c["clip"]) * adv
                    ).mean()
                    v_loss = 0.5 * ((self.critic(b["obs"][idx]).squeeze(-1) - b["ret"][idx]) ** 2)
                    loss = pg + c["vf_coef"] * v_loss.mean() - ent_coef * dist.entropy().mean()
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.params, c["max_grad_norm"])
                    self.opt.step()

    def evaluate(self) -> float:
        """Mean return of the last ``window`` training episodes; ``initial_score`` before
        the first one ends (0, CartPole's worst; an environment whose returns are
        negative needs its own worst, e.g. -500 for Acrobot-v1, or an untrained member
        would look better than every trained one)."""
        return float(np.mean(self.returns)) if self.returns else self.initial_score

    def test(self, policy: str = "greedy", max_episode_steps: int | None = None) -> float:
        """Mean return over ``test_episodes`` fixed-seed episodes of the greedy policy
        (``"greedy"``: the most probable action) or of the policy itself (``"sampled"``:
        actions drawn from it with a fixed-seed generator, so the result is deterministic),
        episodes cut at ``max_episode_steps`` (the environment's own limit by default: 500
        for CartPole-v1 and Acrobot-v1). ``"expected"``: the policy's exact expected
        return, on an environment that computes it (``NoisyMDP``)."""
        if policy not in ("greedy", "sampled", "expected"):
            raise ValueError(f"policy: 'greedy', 'sampled' or 'expected', not {policy!r}")
        torch = self.torch
        if policy == "expected":
            return self._expected_return()
        n = self.cfg["test_episodes"]
        env = self._make_env(n, max_episode_steps)
        obs, _ = env.reset(seed=12345)
        draws = np.random.default_rng(54321)  # the sampled policy's actions; not self.rng
        total = np.zeros(n)
        alive = np.ones(n, dtype=bool)
        with torch.no_grad():
            while alive.any():
                if policy == "greedy":
                    action = self.actor(torch.as_tensor(obs, dtype=torch.float32)).argmax(-1)
                else:
                    u = torch.as_tensor(draws.random(n), dtype=torch.float32)
                    action = self._draw(self._policy(obs).probs, u)
                obs, reward, term, trunc, _ = env.step(action.numpy())
                total += reward * alive
                alive &= ~np.logical_or(term, trunc)
        return float(total.mean())

    def _expected_return(self) -> float:
        """The exact expected episode return of the policy (sampled actions), for an
        environment that computes it (``NoisyMDP``: no episode-sampling noise)."""
        if not hasattr(self.env, "expected_return"):
            raise ValueError(
                f"policy: 'expected' needs an environment that computes it, not {self.env_id!r}"
            )
        eye = np.eye(self.obs_dim, dtype=np.float32)  # every (one-hot) state
        with self.torch.no_grad():
            probs = self._policy(eye).probs.numpy()
        return float(self.env.expected_return(probs))

    def state_dict(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "actor": self.actor.state_dict(),
                "critic": self.critic.state_dict(),
                "optimizer": self.opt.state_dict(),
                "rng": self.rng.bit_generator.state,
                "env": self.env,
                "obs": self.obs,
                "prev_done": self.prev_done,
                "ep_return": self.ep_return,
                "returns": list(self.returns),
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = copy.deepcopy(state)
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.env = state["env"]
        self.obs = state["obs"]
        self.prev_done = state["prev_done"]
        self.ep_return = state["ep_return"]
        self.returns = deque(state["returns"], maxlen=self.returns.maxlen)
