"""Policy-gradient control of a noisy linear-quadratic system: an RL task where the
learning-rate schedule matters (issue 11 item 3).

CartPole, Acrobot and the noisy tabular MDP have no learning-rate schedule to find for
PPO at two-core scale (``benchmarks/RESULTS.md``): a tuned constant rate is as good as
any decay. What makes a schedule matter on the noisy quadratic model is a noisy
gradient on an ill-conditioned problem: a high rate makes fast progress to a noise
floor, a low one has a lower floor but gets there slowly. The linear-quadratic regulator
(LQR), the standard testbed of policy-gradient theory (Fazel et al. 2018; Recht, "A
Tour of Reinforcement Learning", 2019), has the same structure in reinforcement
learning: the policy gradient is estimated from sampled episodes (noisy), and the cost
is smooth in the policy with curvatures spread over two orders of magnitude.

The system (fixed by ``task_seed``, the same for every experiment seed):
``x_{t+1} = A x_t + B u_t + w_t``, ``n`` states and ``m`` controls, ``A = O diag(λ) O'``
with ``O`` a random rotation and the modes ``λ`` evenly spread over ``eigs`` (the top
one slightly unstable: a mode that has to be controlled), ``B`` Gaussian, process noise
``w_t ~ N(0, process_noise² I)``, ``x_0 ~ N(0, I)``, episodes of ``horizon`` steps. A
step's reward is ``-(x' Q x + u' R u)`` with ``Q`` diagonal, its weights log-uniform over
``[q_min, 1]`` (the small ones make slow directions), ``R = r I``.

The agent: a linear Gaussian policy ``u = -K x + sigma ε`` (``K`` starts at 0; ``sigma``
fixed), trained by the likelihood-ratio policy gradient (REINFORCE with reward-to-go
and the batch mean return-to-go at each time as baseline) on ``envs`` episodes per
iteration, by SGD with momentum 0.9 and the gradient's norm clipped at
``max_grad_norm`` (as RL agents clip it) at the tuned rate ``lr``; ``optimizer="adam"``
uses Adam instead. One firepbt *step* is one iteration. SGD is the default because it
gives the task the noisy quadratic model's trade-off (``benchmarks/rl_reference.py
--env lqr``, 24 seeds: a linear decay ends 9% closer to the optimum than the best
constant rate, a small effect but the first RL task here with one); with Adam, a rate
high enough to be fast occasionally destabilises the closed loop, and the spike in
Adam's second moment then stalls learning for hundreds of iterations, which no later
decay undoes (there the decay's gain is about the same and the high rates erratic).

Q (:meth:`LQRPolicyGradient.evaluate`, maximised) is the mean return of the last
``window`` training episodes, as PBT does for RL. :meth:`LQRPolicyGradient.test` is the
policy's exact expected return (state covariances propagated in closed form, no episode
noise); :func:`optimal_return` is the best expected return of any linear policy ``K``
(numerical optimisation of that closed form), so a result can be read as a gap to the
optimum. NumPy only.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

__all__ = ["LQRPolicyGradient", "optimal_return"]


class LQRPolicyGradient:
    """Linear Gaussian policy on a noisy LQR, trained by policy gradient with clipped
    SGD (hyperparameter ``lr``; Q: mean training episode return, maximised).

    Args:
        seed: the agent's episodes (initial states, exploration and process noise).
        states, controls: ``n`` and ``m``.
        horizon: steps per episode.
        envs: episodes per iteration (one policy-gradient estimate).
        sigma: standard deviation of the exploration noise.
        process_noise: standard deviation of ``w_t``.
        q_min: the smallest state-cost weight (the weights are log-uniform in [q_min, 1]).
        r: the control-cost weight.
        eigs: the range of the open-loop modes ``λ``.
        window: training episodes averaged by Q.
        task_seed: the system (A, B, Q).
        optimizer: ``"sgd"`` (momentum 0.9, norm clipping) or ``"adam"``.
        max_grad_norm: SGD's clipping threshold on the gradient's Frobenius norm.
    """

    def __init__(
        self,
        seed: int,
        states: int = 8,
        controls: int = 4,
        horizon: int = 16,
        envs: int = 16,
        sigma: float = 0.3,
        process_noise: float = 0.1,
        q_min: float = 0.01,
        r: float = 0.1,
        eigs: tuple[float, float] | list[float] = (0.6, 1.02),
        window: int = 64,
        task_seed: int = 0,
        optimizer: str = "sgd",
        max_grad_norm: float = 50.0,
    ) -> None:
        n, m = int(states), int(controls)
        checks = {
            "states": n >= 1,
            "controls": m >= 1,
            "horizon": int(horizon) >= 1,
            "envs": int(envs) >= 2,  # a baseline (the batch mean) needs two episodes
            "window": int(window) >= 1,
            "sigma": sigma > 0,
            "process_noise": process_noise >= 0,
            "q_min": 0 < q_min <= 1,
            "r": r > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"LQR: {name} out of range, got {locals()[name]!r}")
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"LQR: optimizer must be 'sgd' or 'adam', got {optimizer!r}")
        if not max_grad_norm > 0:
            raise ValueError(f"LQR: max_grad_norm must be > 0, got {max_grad_norm!r}")
        self.optimizer, self.max_grad_norm = optimizer, float(max_grad_norm)
        lo, hi = (float(v) for v in eigs)
        if not lo <= hi:
            raise ValueError(f"LQR: eigs must be (low, high) with low <= high, got {eigs!r}")
        task = np.random.default_rng(task_seed)
        rot, _ = np.linalg.qr(task.standard_normal((n, n)))
        self.A = rot @ np.diag(np.linspace(lo, hi, n)) @ rot.T
        self.B = task.standard_normal((n, m)) / math.sqrt(n)
        self.Q = np.diag(np.exp(task.uniform(math.log(q_min), 0.0, n)))
        self.R = float(r) * np.eye(m)
        self.n, self.m, self.horizon, self.envs = n, m, int(horizon), int(envs)
        self.sigma, self.w = float(sigma), float(process_noise)
        self.K = np.zeros((m, n))
        self.moment1 = np.zeros((m, n))  # SGD's momentum buffer, or Adam's first moment
        self.moment2 = np.zeros((m, n))  # Adam's second moment
        self.t = 0
        self.rng = np.random.default_rng(seed)
        self.returns: list[float] = []
        self.window = int(window)

    # -- training ----------------------------------------------------------------------

    def _episodes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``envs`` episodes under the current policy: states (H, N, n), exploration
        draws (H, N, m) and rewards (H, N)."""
        H, N = self.horizon, self.envs
        xs = np.empty((H, N, self.n))
        es = self.rng.standard_normal((H, N, self.m))
        ws = self.rng.standard_normal((H, N, self.n)) * self.w
        rs = np.empty((H, N))
        x = self.rng.standard_normal((N, self.n))
        qd = np.diag(self.Q)
        rr = self.R[0, 0]
        for t in range(H):
            u = -x @ self.K.T + self.sigma * es[t]
            xs[t] = x
            rs[t] = -((x * x) @ qd + rr * np.einsum("ij,ij->i", u, u))
            x = x @ self.A.T + u @ self.B.T + ws[t]
        return xs, es, rs

    def train(self, steps: int, hparams: dict[str, Any]) -> None:
        lr = float(hparams["lr"])
        if not lr >= 0 or math.isinf(lr):
            raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
        b1, b2, eps = 0.9, 0.999, 1e-8
        with np.errstate(all="ignore"):
            for _ in range(int(steps)):
                xs, es, rs = self._episodes()
                go = np.cumsum(rs[::-1], axis=0)[::-1]  # return-to-go (H, N)
                adv = go - go.mean(axis=1, keepdims=True)
                # d log pi / dK = -eps x' / sigma  (u = -K x + sigma eps)
                g = -np.einsum("tn,tni,tnj->ij", adv, es, xs) / (self.sigma * self.envs)
                self.returns = (self.returns + go[0].tolist())[-self.window :]
                self.t += 1
                if self.optimizer == "sgd":  # ascent: K follows the return's gradient
                    norm = float(np.linalg.norm(g))
                    if norm > self.max_grad_norm:
                        g = g * (self.max_grad_norm / norm)
                    self.moment1 = b1 * self.moment1 + g
                    self.K = self.K + lr * self.moment1
                else:
                    self.moment1 = b1 * self.moment1 + (1 - b1) * g
                    self.moment2 = b2 * self.moment2 + (1 - b2) * g * g
                    mh = self.moment1 / (1 - b1**self.t)
                    vh = self.moment2 / (1 - b2**self.t)
                    self.K = self.K + lr * mh / (np.sqrt(vh) + eps)
                if not np.all(np.isfinite(self.K)):
                    self.K = np.full_like(self.K, np.nan)
                    break

    # -- scores ------------------------------------------------------------------------

    def evaluate(self) -> float:
        """Mean return of the last ``window`` training episodes (``-inf`` if diverged,
        the return of ``K = 0`` before the first episode)."""
        if not np.all(np.isfinite(self.K)):
            return -math.inf  # diverged (the last window's returns came before it did)
        if not self.returns:
            return self.test()
        q = float(np.mean(self.returns))
        return q if math.isfinite(q) else -math.inf

    def test(self) -> float:
        """The policy's exact expected episode return (``-inf`` if diverged)."""
        return expected_return(self, self.K)

    def state_dict(self) -> dict[str, Any]:
        return {
            "K": self.K.copy(),
            "moments": (self.moment1.copy(), self.moment2.copy(), self.t),
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "returns": list(self.returns),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.K = np.array(state["K"], dtype=np.float64, copy=True)
        m1, m2, t = state["moments"]
        self.moment1, self.moment2, self.t = np.array(m1), np.array(m2), int(t)
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.returns = list(state["returns"])


def expected_return(task: LQRPolicyGradient, K: np.ndarray) -> float:
    """Exact expected episode return of ``u = -K x + sigma ε`` on ``task``'s system:
    ``E x_t x_t'`` propagated in closed form (``Σ_0 = I``)."""
    if not np.all(np.isfinite(K)):
        return -math.inf
    M = task.A - task.B @ K
    drive = task.sigma**2 * task.B @ task.B.T + task.w**2 * np.eye(task.n)
    step_cost = task.Q + K.T @ task.R @ K
    explore = task.sigma**2 * float(np.trace(task.R))
    S = np.eye(task.n)
    cost = 0.0
    with np.errstate(all="ignore"):
        for _ in range(task.horizon):
            cost += float(np.trace(step_cost @ S)) + explore
            S = M @ S @ M.T + drive
    return -cost if math.isfinite(cost) else -math.inf


def optimal_return(**kwargs: Any) -> float:
    """The best expected return of any linear policy on the system ``kwargs`` describe
    (the arguments of :class:`LQRPolicyGradient`, ``seed`` excluded): BFGS on the exact
    expected return from ``K = 0``."""
    from scipy.optimize import minimize

    task = LQRPolicyGradient(0, **kwargs)
    shape = (task.m, task.n)
    res = minimize(
        lambda k: -expected_return(task, k.reshape(shape)), np.zeros(task.m * task.n),
        method="BFGS", options={"gtol": 1e-8},
    )  # fmt: skip
    return float(-res.fun)
