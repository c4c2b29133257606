"""MNIST-1D benchmark (issue 3): MLP 40-100-100-10, SGD momentum 0.9, wd 5e-4, batch 128,
4000 steps, lr log-uniform in [1e-2, 1], eval every 10, ready every 100, 22 workers.

References (one seed, chosen on validation over a grid of peak lrs): the best constant
lr and the step schedule (x0.1 at 50% and 75%).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from benchmarks.common import Benchmark, algorithm


def _config(algo: dict[str, Any], *, args: dict[str, Any], steps: int, ready: int,
            max_eval: int) -> dict[str, Any]:  # fmt: skip
    if algo["name"] == "fire":
        algo = {**algo, "max_eval_steps": max_eval}
    return {
        "trainable": "firepbt.tasks.mnist1d:MNIST1D",
        "direction": "max",
        "steps": steps,
        "eval_interval": 10,
        "ready_interval": ready,
        "mode": "sync",
        "args": args,
        "space": {"lr": {"kind": "log_uniform", "low": 0.01, "high": 1.0}},
        "algorithm": algo,
    }


def _references(steps: int, args: dict[str, Any], grid: list[float]) -> dict[str, dict[str, Any]]:
    from firepbt.tasks.mnist1d import reference_schedules

    return reference_schedules(steps, args, grid)


def benchmarks(quick: bool) -> list[Benchmark]:
    if quick:
        args: dict[str, Any] = {"num_samples": 2000, "hidden": 32}
        steps, ready, max_eval, n, sub, ev, seeds = 200, 50, 100, 10, 4, 2, [0]
        grid = [0.1, 0.5]
    else:
        args = {"num_samples": 10_000, "hidden": 100}
        steps, ready, max_eval, n, sub, ev, seeds = 4000, 100, 300, 22, 8, 6, [0, 1]
        grid = [0.1, 0.2, 0.4]
    cfg = partial(_config, args=args, steps=steps, ready=ready, max_eval=max_eval)
    fire = dict(subpopulations=2, subpopulation_size=sub, evaluators=ev, p_stat=0.01)
    return [
        Benchmark(
            name="mnist1d",
            title=f"MNIST-1D, {n} workers",
            methods={
                "random": cfg(algorithm("random", n)),
                "pbt": cfg(algorithm("pbt", n)),
                "fire": cfg(algorithm("fire", n, **fire)),
            },
            seeds=seeds,
            score="validation accuracy",
            test="test accuracy",
            references=partial(_references, steps, args, grid),
            reference_key="mnist1d",
        )
    ]
