"""The NQM trainable and its exact second-moment dynamics (see :mod:`firepbt.tasks.nqm`)."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

DEFAULT_DIM = 10_000
DEFAULT_BATCH = 4.0
LR_MIN = 1e-4
_PENALTY = 1e10  # loss the optimisers see for a diverged (non-finite) schedule


def _curvatures(dim: int) -> np.ndarray:
    if int(dim) != dim or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    return 1.0 / np.arange(1, int(dim) + 1, dtype=np.float64)


def _advance(s: np.ndarray, k: int, lr: float, h: np.ndarray, batch_size: float) -> np.ndarray:
    """Second moments after ``k`` SGD steps at learning rate ``lr`` (c = h), in closed form.

    Written to stay accurate when ``a = (1 - lr h)^2`` is close to 1 (tiny ``lr h``): uses
    ``1 - a = x (2 - x)`` and ``1 - a^k = -expm1(k log a)`` with ``x = lr h``, and
    ``log a = 2 log1p(-x)``. ``a == 1`` (``x`` = 0 or 2) sums the series as ``k``. Overflow
    gives ``inf`` (or NaN) rather than an exception.
    """
    if k <= 0 or lr == 0.0:
        return s.copy()
    with np.errstate(all="ignore"):
        x = lr * h
        b = (lr * lr / batch_size) * h
        if k == 1:
            return (1.0 - x) ** 2 * s + b
        one_minus_a = x * (2.0 - x)
        if lr * float(h.max()) <= 1.0:  # the usual case: 0 < x <= 1, so 0 <= a < 1
            k_log_a = (2.0 * k) * np.log1p(-x)
            geom = -np.expm1(k_log_a) / one_minus_a
        else:
            log_a = 2.0 * np.where(x <= 1.0, np.log1p(-np.minimum(x, 1.0)), np.log(x - 1.0))
            k_log_a = k * log_a
            geom = np.where(one_minus_a == 0.0, float(k), -np.expm1(k_log_a) / one_minus_a)
        return np.exp(k_log_a) * s + b * geom


def _loss(s: np.ndarray, h: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(0.5 * np.dot(h, s))


def _check_lr(lr: Any) -> float:
    lr = float(lr)
    if not lr >= 0.0 or math.isinf(lr):
        raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
    return lr


class NQM:
    """Noisy quadratic model trainable (hyperparameter: ``lr``; objective minimised).

    Args:
        seed: seeds the evaluation-noise stream only; the model itself starts from the
            fixed ``s_0 = 1`` and trains deterministically.
        dim: number of dimensions ``d`` (curvatures ``h_i = 1/i``).
        batch_size: ``B``; gradient-noise variance is ``c_i / B`` with ``c_i = h_i``.
        noise: :meth:`evaluate` returns ``loss * (1 + noise * z)``, ``z ~ N(0, 1)``.
            With ``noise = 0`` it is the exact loss (and draws nothing).
        lr_max: if given, learning rates above it are clipped to it in :meth:`train`.

    The noise stream's bit-generator state is part of :meth:`state_dict`, so
    :meth:`load_state_dict` restores it: when a worker copies another network's weights
    (PBT's exploit), the noise stream comes along, and the copy draws the same noise the
    source would have drawn next. This keeps a trainable's evaluations a function of its
    state alone (a reloaded checkpoint replays exactly). The price: right after an exploit
    the copy and its source share noise draws, so their next evaluations' noise is
    correlated (identical ``z``), until their draw counts differ.

    Non-finite learning rates or negative ones raise ``ValueError``; a divergent one
    (``lr >= 2`` here) makes the loss ``inf``/NaN without raising or warning.
    """

    accepted_hparams = ("lr",)  # the search space may name only these

    def __init__(
        self,
        seed: int,
        dim: int = DEFAULT_DIM,
        batch_size: float = DEFAULT_BATCH,
        noise: float = 0.0,
        lr_max: float | None = None,
    ) -> None:
        self.h = _curvatures(dim)
        self.dim = int(dim)
        if not float(batch_size) > 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size!r}")
        if not float(noise) >= 0:
            raise ValueError(f"noise must be >= 0, got {noise!r}")
        if lr_max is not None and not float(lr_max) > 0:
            raise ValueError(f"lr_max must be > 0, got {lr_max!r}")
        self.batch_size = float(batch_size)
        self.noise = float(noise)
        self.lr_max = None if lr_max is None else float(lr_max)
        self.s = np.ones(self.dim, dtype=np.float64)
        self.rng = np.random.default_rng(seed)

    def train(self, steps: int, hparams: dict) -> None:
        """Apply ``steps`` SGD steps at ``hparams["lr"]`` in closed form (O(d))."""
        lr = _check_lr(hparams["lr"])
        if self.lr_max is not None:
            lr = min(lr, self.lr_max)
        self.s = _advance(self.s, int(steps), lr, self.h, self.batch_size)

    def test(self) -> float:
        """The exact expected loss ``1/2 sum_i h_i s_i`` (no noise)."""
        return _loss(self.s, self.h)

    def evaluate(self) -> float:
        """The loss times ``1 + noise * z`` (exact when ``noise == 0``)."""
        loss = self.test()
        if self.noise == 0.0:
            return loss
        return loss * (1.0 + self.noise * float(self.rng.standard_normal()))

    def state_dict(self) -> dict[str, Any]:
        return {"s": self.s.copy(), "rng": copy.deepcopy(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        s = np.array(state["s"], dtype=np.float64, copy=True)
        if s.shape != (self.dim,):
            raise ValueError(f"state has shape {s.shape}, expected ({self.dim},)")
        self.s = s
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
