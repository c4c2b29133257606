"""NQM benchmarks (issue 3): d = 10^4, B = 4, 10^4 steps, lr log-uniform in [1e-2, 1].

22 workers with 2% evaluation noise and without (FIRE PBT 2 x 8 + 6 evaluators), and
36 workers with noise (FIRE PBT 3 x 8 + 12 against PBT 36). References: the best
constant lr, a tuned cosine decay and the best 10-piece schedule
(:func:`firepbt.tasks.nqm.references`), exact losses.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from benchmarks.common import Benchmark, algorithm


def _config(algo: dict[str, Any], *, dim: int, steps: int, noise: float) -> dict[str, Any]:
    return {
        "trainable": "firepbt.tasks.nqm:NQM",
        "direction": "min",
        "steps": steps,
        "eval_interval": 10,
        "ready_interval": 100,
        "mode": "sync",
        "args": {"dim": dim, "batch_size": 4, "noise": noise},
        "space": {"lr": {"kind": "log_uniform", "low": 0.01, "high": 1.0}},
        "algorithm": algo,
    }


def _references(steps: int, dim: int) -> dict[str, dict[str, Any]]:
    from firepbt.tasks.nqm import references

    out = {}
    for key, ref in references(steps, 1.0, dim=dim).items():
        out[key] = {
            "label": ref["label"],
            "score": ref["loss"],
            "test": ref["loss"],
            "schedule": ref["schedule"],
        }
    return out


def benchmarks(quick: bool) -> list[Benchmark]:
    dim, steps = (500, 1000) if quick else (10_000, 10_000)
    seeds = [0, 1] if quick else [0, 1, 2]
    n22 = 10 if quick else 22
    fire22 = dict(subpopulations=2, subpopulation_size=4 if quick else 8,
                  evaluators=2 if quick else 6, max_eval_steps=300, p_stat=0.01)  # fmt: skip
    refs = partial(_references, steps, dim)
    out = []
    for noise, tag in ((0.02, "noise"), (0.0, "exact")):
        cfg = partial(_config, dim=dim, steps=steps, noise=noise)
        out.append(
            Benchmark(
                name=f"nqm-{tag}",
                title=f"NQM, {n22} workers, {'2% evaluation noise' if noise else 'no noise'}",
                methods={
                    "random": cfg(algorithm("random", n22)),
                    "pbt": cfg(algorithm("pbt", n22)),
                    "fire": cfg(algorithm("fire", n22, **fire22)),
                },
                seeds=seeds,
                score="validation loss (noisy)" if noise else "loss",
                test="exact loss",
                references=refs,
                reference_key="nqm",
            )
        )
    if not quick:
        cfg = partial(_config, dim=dim, steps=steps, noise=0.02)
        fire36 = dict(subpopulations=3, subpopulation_size=8, evaluators=12,
                      max_eval_steps=300, p_stat=0.01)  # fmt: skip
        out.append(
            Benchmark(
                name="nqm36-noise",
                title="NQM, 36 workers, 2% evaluation noise (FIRE PBT 3 x 8 + 12)",
                methods={
                    "pbt": cfg(algorithm("pbt", 36)),
                    "fire": cfg(algorithm("fire", 36, **fire36)),
                },
                seeds=seeds,
                score="validation loss (noisy)",
                test="exact loss",
                references=refs,
                reference_key="nqm",
            )
        )
    return out
