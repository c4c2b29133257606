"""Greedy-is-right benchmark (issue 11 item 4): the stiff quadratic
(:mod:`firepbt.tasks.stiff`), whose best learning rate depends only on the current state.

d = 1000, quartic weight a = 30, w0 = 1, full-batch gradient descent for 2000 steps, lr
log-uniform in [1e-3, 1]; Q = decades of loss reduction with noise 0.02 (maximised),
test = the exact value; eval every 10 steps, ready every 100, 22 workers (FIRE PBT 2 x 8
+ 6, max_eval_steps 300). Here PBT's greed is right, and FIRE PBT, which gives the
greedy sub-population only 8 of the 22 workers, can only lose; the question is how much.
``pbt8`` and ``pbt16`` (PBT with 8 and 16 members, fewer workers: not equal compute) show
how much of the loss is P_1's size.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from benchmarks.common import Benchmark, algorithm


def _config(algo: dict[str, Any], *, args: dict[str, Any], steps: int) -> dict[str, Any]:
    return {
        "trainable": "firepbt.tasks.stiff:Stiff",
        "direction": "max",
        "steps": steps,
        "eval_interval": 10,
        "ready_interval": 100,
        "mode": "sync",
        "args": args,
        "space": {"lr": {"kind": "log_uniform", "low": 0.001, "high": 1.0}},
        "algorithm": algo,
    }


def benchmarks(quick: bool) -> list[Benchmark]:
    if quick:
        args: dict[str, Any] = {"dim": 100, "quartic": 30.0, "noise": 0.02}
        steps, n, sub, ev, seeds = 500, 10, 4, 2, [0]
    else:
        args = {"dim": 1000, "quartic": 30.0, "noise": 0.02}
        steps, n, sub, ev, seeds = 2000, 22, 8, 6, [0, 1, 2, 3, 4]
    cfg = partial(_config, args=args, steps=steps)
    fire = dict(subpopulations=2, subpopulation_size=sub, evaluators=ev, max_eval_steps=300,
                p_stat=0.01)  # fmt: skip
    return [
        Benchmark(
            name="stiff",
            title=f"Stiff quadratic (greedy is right), {n} workers",
            methods={
                "random": cfg(algorithm("random", n)),
                "pbt": cfg(algorithm("pbt", n)),
                "fire": cfg(algorithm("fire", n, **fire)),
                # PBT as small as FIRE PBT's P_1 (8) and as both its sub-populations (16)
                "pbt8": cfg(algorithm("pbt", sub)),
                "pbt16": cfg(algorithm("pbt", 2 * sub)),
            },
            seeds=seeds,
            score="decades of loss reduction (noise 0.02)",
            test="decades of loss reduction (exact)",
        )
    ]
