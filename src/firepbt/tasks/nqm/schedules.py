"""Reference learning-rate schedules on the NQM, computed exactly (for benchmark reports).

The best constant learning rate, a tuned cosine and the best piecewise-constant schedule
(:func:`references` gathers them); see :mod:`firepbt.tasks.nqm`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from firepbt.tasks.nqm.model import (
    _PENALTY,
    DEFAULT_BATCH,
    DEFAULT_DIM,
    LR_MIN,
    _advance,
    _check_lr,
    _curvatures,
    _loss,
)


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
