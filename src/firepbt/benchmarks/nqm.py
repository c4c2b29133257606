"""The noisy quadratic model (NQM) of Zhang et al. 2019, as a firepbt trainable.

Zhang, Li, Nado, Martens, Sachdeva, Dahl, Shallue, Grosse: "Which algorithmic choices
matter at which batch sizes? Insights from a noisy quadratic model" (NeurIPS 2019). It is
the standard model of short-horizon bias in learning-rate tuning: a high learning rate
wins over a few hundred steps but loses over the whole run, so greedy schedule search
(truncation PBT) tends to keep the learning rate too high.

The model is a quadratic ``L(w) = 1/2 sum_i h_i w_i^2`` with curvatures ``h_i = 1/i``
(``i = 1..d``), trained by SGD whose gradient noise has per-dimension variance
``c_i / B`` (``c_i = h_i``, batch size ``B``). Only the second moments
``s_i = E[w_i^2]`` matter for the expected loss ``1/2 sum_i h_i s_i``; under SGD with
learning rate ``alpha`` they evolve exactly as::

    s_i <- (1 - alpha h_i)^2 s_i + alpha^2 c_i / B

starting from ``s_i = 1``. ``k`` steps at a constant learning rate have the closed form
``s_k = a^k s + b (1 - a^k) / (1 - a)`` with ``a = (1 - alpha h)^2``, ``b = alpha^2 c / B``,
so one :meth:`NQM.train` call costs O(d) whatever ``k`` is. Learning rates
``alpha >= 2`` diverge on ``h_1 = 1``: the loss becomes ``inf`` (or NaN), without raising.

Besides the trainable, this module computes reference schedules on the same model
(:func:`best_constant_lr`, :func:`tuned_cosine`, :func:`best_piecewise_schedule`,
:func:`references`) for benchmark reports. The objective is minimised (direction "min").
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar

__all__ = [
    "NQM",
    "best_constant_lr",
    "best_piecewise_schedule",
    "final_loss",
    "references",
    "schedule_segments",
    "tuned_cosine",
]

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


# --------------------------------------------------------------------------- references


def final_loss(
    lrs: Sequence[tuple[int, float]],
    *,
    dim: int = DEFAULT_DIM,
    batch_size: float = DEFAULT_BATCH,
) -> float:
    """Exact loss after training from ``s_0 = 1`` along ``(num_steps, lr)`` pieces."""
    h = _curvatures(dim)
    s = np.ones_like(h)
    for steps, lr in lrs:
        s = _advance(s, int(steps), _check_lr(lr), h, float(batch_size))
    return _loss(s, h)


def schedule_segments(lrs: Sequence[tuple[int, float]]) -> list[dict[str, Any]]:
    """``(num_steps, lr)`` pieces as firepbt schedule segments ``{start, end, hparams}``."""
    out: list[dict[str, Any]] = []
    start = 0
    for steps, lr in lrs:
        end = start + int(steps)
        out.append({"start": start, "end": end, "hparams": {"lr": float(lr)}})
        start = end
    return out


def _piece_lengths(total_steps: int, pieces: int) -> list[int]:
    """``pieces`` near-equal lengths summing to ``total_steps`` (the first ones longer)."""
    if pieces < 1 or total_steps < pieces:
        raise ValueError(f"need 1 <= pieces <= total_steps, got {pieces}, {total_steps}")
    q, r = divmod(int(total_steps), int(pieces))
    return [q + 1] * r + [q] * (pieces - r)


def _check_bounds(lr_min: float, lr_max: float) -> None:
    if not 0 < lr_min < lr_max:
        raise ValueError(f"need 0 < lr_min < lr_max, got {lr_min}, {lr_max}")


def _penalised(loss: float) -> float:
    return loss if math.isfinite(loss) else _PENALTY


def best_constant_lr(
    total_steps: int = 10_000,
    *,
    lr_max: float = 1.0,
    lr_min: float = LR_MIN,
    dim: int = DEFAULT_DIM,
    batch_size: float = DEFAULT_BATCH,
) -> tuple[float, float]:
    """The best constant learning rate in ``[lr_min, lr_max]``: ``(lr, final loss)``.

    A 41-point log-spaced grid brackets the minimum, then bounded Brent minimisation in
    log-lr refines it within the bracket.
    """
    _check_bounds(lr_min, lr_max)

    def f(log_lr: float) -> float:
        return _penalised(
            final_loss([(total_steps, math.exp(log_lr))], dim=dim, batch_size=batch_size)
        )

    return _minimise_log_lr(f, lr_min, lr_max)


def _minimise_log_lr(
    f: Callable[[float], float], lr_min: float, lr_max: float
) -> tuple[float, float]:
    """Minimise ``f(log lr)`` over [lr_min, lr_max]: a 41-point grid, then bounded Brent
    around the best grid point. Returns ``(lr, f)``."""
    grid = np.linspace(math.log(lr_min), math.log(lr_max), 41)
    values = [f(float(g)) for g in grid]
    i = int(np.argmin(values))
    lo, hi = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, len(grid) - 1)])
    res = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    best_log, best = (float(res.x), float(res.fun)) if res.fun < values[i] else (grid[i], values[i])
    return math.exp(best_log), best


def _cosine_pieces(total_steps: int, peak: float, pieces: int) -> list[tuple[int, float]]:
    """Cosine decay ``peak * (1 + cos(pi t / T)) / 2`` as ``pieces`` constant pieces.

    Each piece takes the cosine's value at its midpoint; ``pieces == total_steps`` gives
    the exact per-step schedule (``t = 0 .. T-1``, the value at each step's start).
    """
    lengths = _piece_lengths(total_steps, pieces)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    mids = starts + (0.0 if pieces == total_steps else 0.5 * np.asarray(lengths))
    values = peak * 0.5 * (1.0 + np.cos(np.pi * mids / total_steps))
    return [(n, float(v)) for n, v in zip(lengths, values, strict=True)]


def tuned_cosine(
    total_steps: int = 10_000,
    *,
    lr_max: float = 1.0,
    lr_min: float = LR_MIN,
    pieces: int = 100,
    dim: int = DEFAULT_DIM,
    batch_size: float = DEFAULT_BATCH,
) -> tuple[float, float]:
    """Cosine decay from a tuned peak to 0: ``(peak lr, final loss)``.

    The schedule is applied as ``pieces`` (default 100) equal constant pieces, each at the
    cosine's value at the piece midpoint, each in closed form (O(pieces * d) per loss).
    ``pieces=total_steps`` is the exact per-step schedule (slower: O(T * d)). The peak in
    ``[lr_min, lr_max]`` is found like :func:`best_constant_lr` (grid, then bounded Brent).
    """
    _check_bounds(lr_min, lr_max)

    def f(log_peak: float) -> float:
        sched = _cosine_pieces(total_steps, math.exp(log_peak), pieces)
        return _penalised(final_loss(sched, dim=dim, batch_size=batch_size))

    return _minimise_log_lr(f, lr_min, lr_max)


def best_piecewise_schedule(
    total_steps: int = 10_000,
    pieces: int = 10,
    *,
    lr_max: float = 1.0,
    lr_min: float = LR_MIN,
    dim: int = DEFAULT_DIM,
    batch_size: float = DEFAULT_BATCH,
) -> tuple[list[tuple[int, float]], float]:
    """The best schedule of ``pieces`` equal-length constant pieces: ``(pieces, loss)``.

    L-BFGS-B on the pieces' log learning rates within ``[log lr_min, log lr_max]``, from
    four deterministic starts (the best constant lr, a constant ``lr_max``, a geometric
    decay from ``lr_max`` to a tenth of the best constant lr, and a cosine decay from
    ``lr_max`` sampled at the pieces' midpoints); the best end point wins. This is the "practical optimum" reference: a schedule that
    greedy schedule search could in principle find.
    """
    _check_bounds(lr_min, lr_max)
    lengths = _piece_lengths(total_steps, pieces)
    h = _curvatures(dim)
    batch = float(batch_size)
    lo, hi = math.log(lr_min), math.log(lr_max)

    def f(log_lrs: np.ndarray) -> float:
        s = np.ones_like(h)
        for n, log_lr in zip(lengths, log_lrs, strict=True):
            s = _advance(s, n, math.exp(float(log_lr)), h, batch)
        return _penalised(_loss(s, h))

    const_lr, _ = best_constant_lr(
        total_steps, lr_max=lr_max, lr_min=lr_min, dim=dim, batch_size=batch_size
    )
    cos_lrs = [max(lr, lr_min) for _, lr in _cosine_pieces(total_steps, lr_max, pieces)]
    starts = [
        np.full(pieces, math.log(const_lr)),
        np.full(pieces, hi),
        np.linspace(hi, max(math.log(const_lr / 10), lo), pieces),
        np.log(cos_lrs),
    ]
    best_x, best_f = starts[0], f(starts[0])
    for x0 in starts:
        x0 = np.clip(x0, lo, hi)
        res = minimize(f, x0, method="L-BFGS-B", bounds=[(lo, hi)] * pieces)
        if float(res.fun) < best_f:
            best_x, best_f = np.asarray(res.x), float(res.fun)
    sched = [(n, math.exp(float(x))) for n, x in zip(lengths, best_x, strict=True)]
    return sched, best_f


def references(
    total_steps: int = 10_000,
    lr_max: float = 1.0,
    *,
    pieces: int = 10,
    cosine_pieces: int = 100,
    lr_min: float = LR_MIN,
    dim: int = DEFAULT_DIM,
    batch_size: float = DEFAULT_BATCH,
) -> dict[str, dict[str, Any]]:
    """Reference schedules for a report, keyed ``constant``, ``cosine``, ``piecewise``.

    Each entry has ``loss`` (exact final loss), ``schedule`` (firepbt segments
    ``{start, end, hparams: {lr}}``) and ``label``; ``constant`` also has ``lr``,
    ``cosine`` has ``peak_lr``.
    """
    kw: dict[str, Any] = {"lr_max": lr_max, "lr_min": lr_min, "dim": dim, "batch_size": batch_size}
    const_lr, const_loss = best_constant_lr(total_steps, **kw)
    peak, cos_loss = tuned_cosine(total_steps, pieces=cosine_pieces, **kw)
    piece_sched, piece_loss = best_piecewise_schedule(total_steps, pieces, **kw)
    return {
        "constant": {
            "label": "best constant lr",
            "lr": const_lr,
            "loss": const_loss,
            "schedule": schedule_segments([(total_steps, const_lr)]),
        },
        "cosine": {
            "label": "tuned cosine decay",
            "peak_lr": peak,
            "loss": cos_loss,
            "schedule": schedule_segments(_cosine_pieces(total_steps, peak, cosine_pieces)),
        },
        "piecewise": {
            "label": f"best {pieces}-piece schedule",
            "loss": piece_loss,
            "schedule": schedule_segments(piece_sched),
        },
    }
