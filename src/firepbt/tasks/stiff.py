"""A task where greedy PBT is right (issue 11): the stiff quadratic.

``L(w) = sum_i h_i (w_i^2 / 2 + a w_i^4 / 4)`` with ``h_i = 1/i`` (``i = 1..d``), trained
by full-batch gradient descent from ``w = w0`` (no gradient noise). Gradient descent
at learning rate ``lr`` is stable on dimension ``i`` while ``lr h_i (1 + 3 a w_i^2) < 2``:
early on the quartic term makes the problem stiff and only small learning rates are
stable; as ``w`` shrinks the stable learning rate grows towards ``2 / h_1``. Without
gradient noise every step at a higher stable learning rate lowers every dimension's
loss more, so the best learning rate depends only on the current state and the greedy
choice (truncation PBT on the current Q) is the right one: nothing is deceptive here.

Q is the number of decades the loss has dropped since the start,
``log10(L(w0) / L(w))`` (the loss spans many decades), plus ``noise * z``
(``z ~ N(0, 1)``) in :meth:`evaluate`; :meth:`test` is the exact value. A diverged
network (overflow) scores ``-inf``. Maximised.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

__all__ = ["Stiff"]


class Stiff:
    """Stiff quadratic trainable (hyperparameter ``lr``; objective maximised).

    Args:
        seed: seeds the evaluation-noise stream only (training is deterministic).
        dim: number of dimensions ``d``.
        quartic: ``a``, the weight of the quartic term.
        w0: the starting value of every ``w_i``.
        noise: standard deviation of the additive noise on ``log10`` loss.
    """

    def __init__(
        self, seed: int, dim: int = 1000, quartic: float = 30.0, w0: float = 1.0, noise: float = 0.0
    ) -> None:
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if not float(noise) >= 0:
            raise ValueError(f"noise must be >= 0, got {noise!r}")
        self.h = 1.0 / np.arange(1, int(dim) + 1, dtype=np.float64)
        self.a = float(quartic)
        self.noise = float(noise)
        self.w = np.full(int(dim), float(w0))
        self.loss0 = self._loss()
        self.rng = np.random.default_rng(seed)

    def train(self, steps: int, hparams: dict) -> None:
        lr = float(hparams["lr"])
        if not lr >= 0 or math.isinf(lr):
            raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
        w, h, a = self.w, self.h, self.a
        with np.errstate(all="ignore"):
            for _ in range(int(steps)):
                w = w - lr * h * (w + a * w * w * w)
                if not np.isfinite(w[0]):
                    w = np.full_like(w, np.inf)
                    break
        self.w = w

    def _loss(self) -> float:
        w = self.w
        with np.errstate(all="ignore"):
            return float(np.sum(self.h * (w * w / 2 + self.a * w**4 / 4)))

    def test(self) -> float:
        """Decades of loss reduction, ``log10(L(w0) / L(w))`` (``-inf`` if diverged)."""
        loss = self._loss()
        if not math.isfinite(loss):
            return -math.inf
        if loss <= 0:
            return math.inf if loss == 0 else -math.inf
        return math.log10(self.loss0 / loss)

    def evaluate(self) -> float:
        q = self.test()
        if self.noise == 0.0 or not math.isfinite(q):
            return q
        return q + self.noise * float(self.rng.standard_normal())

    def state_dict(self) -> dict[str, Any]:
        return {"w": self.w.copy(), "rng": copy.deepcopy(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.w = np.array(state["w"], dtype=np.float64, copy=True)
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
