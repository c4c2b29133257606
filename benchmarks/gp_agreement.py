"""How often the ``gp_refit`` approximation decides as the exact GP does (issue 12).

``algorithm.gp_refit = g > 0`` refits a curve's GP hyperparameters only once the curve
has grown by the fraction g since its last fit and otherwise keeps them (posterior mean
only). This script measures what that changes where it matters, on curve pairs taken
from real runs of the bundled NQM benchmark (FIRE PBT, exact GP):

1. runs ``nqm-fire`` (several shapes, sync and async) and records every pair of curves
   the decider compared: parent-fitness pairs (best_score_diff) and evaluator checks
   (best_score_diff and binom_test), with both curves holding >= 3 finite points (a GP
   smoothing is involved);
2. smooths each curve exactly (a fresh fit) and as a ``gp_refit = g`` curve would have
   been smoothed in the run: grown point by point and smoothed at every ready point
   (every ``ready_interval / eval_interval`` points), so its kernel is the one of its
   latest refit;
3. reports, per g, the share of pairs where the overlap start (s_a, s_b, n), the sign of
   best_score_diff and the binom_test outcome (no overlap / p < p_stat / not) agree.

    PYTHONPATH=src python benchmarks/gp_agreement.py               # ~10,000+ pairs
    PYTHONPATH=src python benchmarks/gp_agreement.py --refit 0.5 1.0 --min-pairs 2000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from firepbt.algorithms import fire
from firepbt.api import run
from firepbt.cli import resolve_config_path
from firepbt.config import load_config
from firepbt.core.curves import Curve, best_score_diff, binom_test, overlap

P_STAT = 0.01
RUNS = [
    ["steps=3000", "algorithm.subpopulations=4", "algorithm.subpopulation_size=16",
     "algorithm.evaluators=36"],
    ["steps=3000", "algorithm.subpopulations=4", "algorithm.subpopulation_size=12",
     "algorithm.evaluators=27", 'mode="async"'],
    ["steps=6000", "seed=1"],
    ["steps=3000", "seed=2", "algorithm.subpopulations=3", "algorithm.subpopulation_size=16",
     "algorithm.evaluators=24"],
    ["steps=3000", "seed=3", "algorithm.subpopulations=4", "algorithm.subpopulation_size=16",
     "algorithm.evaluators=36", 'mode="async"'],
    ["steps=3000", "seed=4", "algorithm.subpopulations=4", "algorithm.subpopulation_size=16",
     "algorithm.evaluators=36"],
]  # fmt: skip

Key = tuple[bytes, bytes]


def _key(c: Curve) -> Key:
    return (c.steps.tobytes(), c.scores.tobytes())


def collect(min_pairs: int, dim: int) -> tuple[dict[Key, tuple[np.ndarray, np.ndarray]], set]:
    """Pairs (key_a, key_b) the decider compared in real runs, and their curves."""
    curves: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
    pairs: set[tuple[Key, Key]] = set()

    def keep(a: Curve, b: Curve) -> None:
        if len(a) >= 3 and len(b) >= 3 and a.is_finite() and b.is_finite():
            ka, kb = _key(a), _key(b)
            curves.setdefault(ka, (a.steps.copy(), a.scores.copy()))
            curves.setdefault(kb, (b.steps.copy(), b.scores.copy()))
            pairs.add((ka, kb))

    pairwise, scalar = fire.pairwise_best_score_diff, fire.best_score_diff

    def spy_pairwise(cs: Any, idx: Any, **kw: Any) -> Any:
        for i, j in idx:
            keep(cs[int(i)], cs[int(j)])
        return pairwise(cs, idx, **kw)

    def spy_scalar(a: Curve, b: Curve, **kw: Any) -> float:
        keep(a, b)
        return scalar(a, b, **kw)

    fire.pairwise_best_score_diff = spy_pairwise  # type: ignore[assignment]
    fire.best_score_diff = spy_scalar  # type: ignore[assignment]
    try:
        for sets in RUNS:
            if len(pairs) >= min_pairs:
                break
            cfg = load_config(
                resolve_config_path("nqm-fire"),
                [f"args.dim={dim}", "checkpoints=false", "replay=false", *sets],
            )
            with tempfile.TemporaryDirectory() as tmp:
                run(cfg, Path(tmp) / "r")
            print(f"  after nqm-fire {' '.join(sets)}: {len(pairs)} pairs", flush=True)
    finally:
        fire.pairwise_best_score_diff = pairwise  # type: ignore[assignment]
        fire.best_score_diff = scalar  # type: ignore[assignment]
    return curves, pairs


def smoothed_as_in_a_run(steps: np.ndarray, y: np.ndarray, refit: float, every: int) -> Curve:
    """A curve grown point by point and smoothed at every ready point, as in a run."""
    c = Curve(gp_refit=refit)
    n = len(y)
    for i in range(n):
        c.append(int(steps[i]), float(y[i]))
        if len(c) >= 3 and (n - len(c)) % every == 0:
            c.smoothed()
    return c


def outcome(a: Curve, b: Curve) -> tuple[Any, float, str]:
    p = binom_test(a, b)
    binom = "none" if p is None else ("significant" if p < P_STAT else "not")
    return overlap(a, b), float(np.sign(best_score_diff(a, b))), binom


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refit", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    ap.add_argument("--min-pairs", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=10, help="points per ready interval")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    print("collecting curve pairs from real runs (exact GP):", flush=True)
    curves, pairs = collect(args.min_pairs, args.dim)
    exact = {k: Curve(s, y) for k, (s, y) in curves.items()}
    ref = {pair: outcome(exact[pair[0]], exact[pair[1]]) for pair in pairs}
    lens = [len(s) for s, _ in curves.values()]
    print(
        f"{len(pairs)} pairs of {len(curves)} distinct curves (3..{max(lens)} points, "
        f"median {int(np.median(lens))}); binom outcomes (exact): "
        + ", ".join(
            f"{k} {sum(v[2] == k for v in ref.values())}" for k in ("none", "significant", "not")
        )
    )
    rows = []
    for g in args.refit:
        approx = {k: smoothed_as_in_a_run(s, y, g, args.every) for k, (s, y) in curves.items()}
        agree = np.zeros(3)
        for pair, (ov, sign, binom) in ref.items():
            o = outcome(approx[pair[0]], approx[pair[1]])
            agree += [o[0] == ov, o[1] == sign, o[2] == binom]
        share = agree / len(ref)
        rows.append(
            {
                "gp_refit": g,
                "pairs": len(ref),
                "overlap": share[0],
                "sign": share[1],
                "binom": share[2],
            }
        )
        print(
            f"gp_refit = {g}: overlap start {100 * share[0]:.2f}%, best_score_diff sign "
            f"{100 * share[1]:.2f}%, binom_test outcome {100 * share[2]:.2f}% agree",
            flush=True,
        )
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
