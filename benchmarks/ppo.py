"""PPO on CartPole-v1 (issue 3's RL task): tuning Adam's lr and the entropy coefficient.

One step = one PPO iteration (8 environments x 32 steps, then 4 epochs of 4
minibatches); 40 iterations (10,240 environment steps) per member, so the task is not
solved by every schedule and the methods can differ. Q is the mean return of the last
20 training episodes (as PBT does in RL); test is the greedy policy's mean return over
8 fixed-seed episodes. 11 workers (FIRE PBT 2 x 4 + 3): small, to fit the time budget.
Reference (one seed): constant lr over a small grid at ent_coef 0.01.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from benchmarks.common import Benchmark, algorithm


def _config(algo: dict[str, Any], *, args: dict[str, Any], steps: int) -> dict[str, Any]:
    return {
        "trainable": "firepbt.tasks.ppo:PPO",
        "direction": "max",
        "steps": steps,
        "eval_interval": 1,
        "ready_interval": 5,
        "mode": "sync",
        "args": args,
        "space": {
            "lr": {"kind": "log_uniform", "low": 1e-4, "high": 1e-2},
            "ent_coef": {"kind": "log_uniform", "low": 1e-4, "high": 0.1},
        },
        "algorithm": algo,
    }


def _references(steps: int, args: dict[str, Any], grid: list[float]) -> dict[str, dict[str, Any]]:
    from firepbt.tasks.ppo import PPO

    best: dict[str, Any] | None = None
    for lr in grid:
        net = PPO(0, **args)
        hp = {"lr": lr, "ent_coef": 0.01}
        net.train(steps, hp)
        score, test = net.evaluate(), net.test()
        if math.isfinite(score) and (best is None or score > best["score"]):
            sched = [{"start": 0, "end": steps, "hparams": hp}]
            best = {"label": "best constant lr (ent 0.01)", "score": score, "test": test,
                    "schedule": sched}  # fmt: skip
    assert best is not None
    return {"constant": best}


def benchmarks(quick: bool) -> list[Benchmark]:
    if quick:
        args: dict[str, Any] = {"num_envs": 4, "rollout": 16, "epochs": 1, "minibatches": 2}
        steps, seeds, grid = 10, [0], [1e-3]
    else:
        args = {"num_envs": 8, "rollout": 32, "epochs": 4, "minibatches": 4}
        steps, seeds, grid = 40, [0, 1], [3e-4, 1e-3, 3e-3]
    cfg = partial(_config, args=args, steps=steps)
    fire = dict(subpopulations=2, subpopulation_size=4, evaluators=3, max_eval_steps=15,
                p_stat=0.01)  # fmt: skip
    return [
        Benchmark(
            name="ppo-cartpole",
            title="PPO on CartPole-v1, 11 workers (lr and entropy coefficient)",
            methods={
                "random": cfg(algorithm("random", 11)),
                "pbt": cfg(algorithm("pbt", 11)),
                "fire": cfg(algorithm("fire", 11, **fire)),
            },
            seeds=seeds,
            score="mean training return (last 20 episodes)",
            test="greedy return (8 episodes)",
            references=partial(_references, steps, args, grid),
            reference_key="ppo",
        )
    ]
