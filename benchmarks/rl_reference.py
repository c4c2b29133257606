"""Does the learning-rate schedule matter on the RL benchmarks? Tuned constant vs decaying rates.

Issue 11 item 3 asks for an RL benchmark where the learning-rate schedule matters. This
script trains PPO exactly as ``rl-cartpole22`` (``--env cartpole``) or ``rl-acrobot22``
(``--env acrobot``) does, or on ``NoisyMDP`` (``--env noisymdp``: the random tabular MDP
with noisy rewards of :mod:`firepbt.tasks.noisy_mdp`, noise 3, 300 iterations, measured by
its policy's exact expected return, then sampled and greedy episodes; a task built to
give RL the gradient noise that makes a schedule matter on the NQM) (:mod:`benchmarks.rl`: 8 environments x 16 steps per
iteration, 2 epochs of 2 minibatches, 120 or 300 iterations, entropy coefficient 0.01)
along hand-written schedules — constant rates, and rates that
decay linearly to zero (PPO's usual annealing) or stepwise — on the benchmark's replay
seeds (``REPLAY_SEEDS``, 24 fresh seeds), and measures each at the end on
``REPLAY_EPISODES`` episodes three ways: the sampled policy (what Q and the paper's RL
objective measure), the greedy one (what the benchmark's own replay column measures),
both with CartPole-v1's 500-step cap, and the greedy one with the cap at 2000 (does a
schedule that wins at 500 hold policies that balance longer, or only more of them at
the cap?). Per schedule: the mean over seeds and its standard error; the best of each
family is the tuned reference (tuned on the same seeds it is measured on, so slightly
optimistic, as a tuned reference is).

    PYTHONPATH=src python -m benchmarks.rl_reference --procs 2
    PYTHONPATH=src python -m benchmarks.rl_reference --env acrobot --procs 2
    PYTHONPATH=src python -m benchmarks.rl_reference --env noisymdp --procs 2
    PYTHONPATH=src python -m benchmarks.rl_reference --env lqr --procs 2
    PYTHONPATH=src python -m benchmarks.rl_reference --env lqr-adam --procs 2

Results go to ``benchmarks/results/rl_reference.json`` (CartPole),
``benchmarks/results/rl_reference-acrobot.json`` and ``rl_reference-noisymdp.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.rl import NUM_ENVS, REPLAY_EPISODES, REPLAY_SEEDS, ROLLOUT, sem

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "rl_reference.json"
#: --env -> (gymnasium id, iterations as the benchmark, results file)
ENVS = {
    "cartpole": ("CartPole-v1", 120, RESULTS),
    "acrobot": ("Acrobot-v1", 300, HERE / "results" / "rl_reference-acrobot.json"),
    # firepbt.tasks.noisy_mdp with 3x noise: built to give RL the NQM's gradient noise
    "noisymdp": ("NoisyMDP", 300, HERE / "results" / "rl_reference-noisymdp.json"),
    # firepbt.tasks.lqr at rl-lqr22's settings (not PPO: a linear Gaussian policy)
    "lqr": ("LQR", 600, HERE / "results" / "rl_reference-lqr.json"),
    # the same with Adam in place of clipped SGD (the task's optimizer="adam")
    "lqr-adam": ("LQR", 600, HERE / "results" / "rl_reference-lqr-adam.json"),
}
#: PPO's arguments beyond rl.py's shared ones, per --env
EXTRA: dict[str, dict[str, Any]] = {
    "cartpole": {},
    "acrobot": {"env": "Acrobot-v1", "initial_score": -500.0},  # as rl.py
    "noisymdp": {"env": "NoisyMDP", "env_args": {"noise": 3.0}},
}
ENT = 0.01
SCHEDULES: dict[str, tuple[str, float]] = {
    **{f"constant {lr:g}": ("constant", lr) for lr in (3e-4, 1e-3, 2e-3, 3e-3, 1e-2)},
    **{f"linear {lr:g} -> 0": ("linear", lr) for lr in (1e-3, 2e-3, 3e-3, 1e-2)},
    **{f"step {lr:g} /10 at 60%": ("step", lr) for lr in (2e-3, 3e-3, 1e-2)},
}


#: NoisyMDP's probe put its best rates near 2e-3..5e-3: the 5e-3 member of every family too
SCHEDULES_MDP: dict[str, tuple[str, float]] = {
    **SCHEDULES,
    "constant 0.005": ("constant", 5e-3),
    "linear 0.005 -> 0": ("linear", 5e-3),
    "step 0.005 /10 at 60%": ("step", 5e-3),
}


#: the LQR with clipped SGD (its default; a 12-seed probe: best constant near 5e-5, best
#: linear decay from 1.5e-4)
SCHEDULES_LQR: dict[str, tuple[str, float]] = {
    **{f"constant {lr:g}": ("constant", lr) for lr in (3e-5, 5e-5, 7e-5, 1e-4, 1.5e-4)},
    **{f"linear {lr:g} -> 0": ("linear", lr) for lr in (7e-5, 1e-4, 1.5e-4, 2e-4, 3e-4)},
    **{f"step {lr:g} /10 at 60%": ("step", lr) for lr in (5e-5, 7e-5, 1e-4, 1.5e-4)},
}
#: the LQR with Adam: higher rates (an 8-seed probe: best constant near 3e-3, best linear
#: decay from 1e-2)
SCHEDULES_LQR_ADAM: dict[str, tuple[str, float]] = {
    **{f"constant {lr:g}": ("constant", lr) for lr in (1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2)},
    **{f"linear {lr:g} -> 0": ("linear", lr) for lr in (3e-3, 5e-3, 1e-2, 2e-2, 3e-2)},
    **{f"step {lr:g} /10 at 60%": ("step", lr) for lr in (3e-3, 5e-3, 1e-2, 2e-2)},
}


def schedules(env: str) -> dict[str, tuple[str, float]]:
    table = {"noisymdp": SCHEDULES_MDP, "lqr": SCHEDULES_LQR, "lqr-adam": SCHEDULES_LQR_ADAM}
    return table.get(env, SCHEDULES)


def lr_at(kind: str, lr0: float, i: int, steps: int) -> float:
    """The rate of iteration ``i`` (0-based) of ``steps``."""
    if kind == "constant":
        return lr0
    if kind == "linear":
        return lr0 * (1.0 - i / steps)  # PPO's annealing: lr0 at 0, lr0/steps at the last
    return lr0 if i < 0.6 * steps else lr0 / 10


METRICS = ("sampled", "greedy", "greedy_2000")
#: NoisyMDP's episodes have a fixed length (no cap to lift); its policy's exact expected
#: return replaces the sampled episodes' noisy mean as the first column
METRICS_MDP = ("expected", "sampled", "greedy")
#: how each metric measures a trained network
MEASURE: dict[str, Callable[[Any], float]] = {
    "sampled": lambda net: net.test("sampled"),
    "greedy": lambda net: net.test("greedy"),
    "greedy_2000": lambda net: net.test("greedy", 2000),
    "expected": lambda net: net.test("expected"),
}


def metrics(env: str) -> tuple[str, ...]:
    return {"noisymdp": METRICS_MDP, "lqr": ("expected",), "lqr-adam": ("expected",)}.get(
        env, METRICS
    )


def _one(job: tuple[str, int, str]) -> tuple[str, int, tuple[float, ...]]:
    name, seed, env = job
    from firepbt.tasks.ppo import PPO

    kind, lr0 = schedules(env)[name]
    _, steps, _ = ENVS[env]
    if env.startswith("lqr"):
        from firepbt.tasks.lqr import LQRPolicyGradient

        lqr = LQRPolicyGradient(seed, optimizer="adam" if env == "lqr-adam" else "sgd")
        for i in range(steps):
            lqr.train(1, {"lr": lr_at(kind, lr0, i, steps)})
        return name, seed, (lqr.test(),)
    net = PPO(seed, num_envs=NUM_ENVS, rollout=ROLLOUT, epochs=2, minibatches=2,
              test_episodes=REPLAY_EPISODES, **EXTRA[env])  # fmt: skip
    for i in range(steps):
        net.train(1, {"lr": lr_at(kind, lr0, i, steps), "ent_coef": ENT})
    return name, seed, tuple(MEASURE[m](net) for m in metrics(env))


def summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "sem": sem(values),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--seeds", type=int, default=len(REPLAY_SEEDS), help="first N replay seeds")
    p.add_argument("--env", choices=sorted(ENVS), default="cartpole")
    p.add_argument("--results", type=Path, default=None, help="default: per --env")
    args = p.parse_args(argv)
    env_id, steps, default_results = ENVS[args.env]
    results = args.results or default_results
    if not 2 <= args.seeds <= len(REPLAY_SEEDS):
        p.error(f"--seeds: between 2 and {len(REPLAY_SEEDS)}")
    seeds = REPLAY_SEEDS[: args.seeds]
    table = schedules(args.env)
    jobs = [(name, s, args.env) for name in table for s in seeds]
    t0 = time.time()
    got: dict[str, dict[int, tuple[float, ...]]] = {}
    with ProcessPoolExecutor(args.procs) as pool:
        for name, seed, values in pool.map(_one, jobs):
            got.setdefault(name, {})[seed] = values
    rows: dict[str, Any] = {}
    names = metrics(args.env)
    dp = 3 if args.env.startswith("lqr") else 1  # the LQR's returns differ in the second decimal
    print("| schedule | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for name in table:
        rows[name] = {}
        for k, metric in enumerate(names):
            values = [got[name][s][k] for s in seeds]
            rows[name][metric] = values
            rows[name][f"{metric}_summary"] = summary(values)
        cells = [rows[name][f"{m}_summary"] for m in names]
        print(
            f"| {name} | "
            + " | ".join(f"{c['mean']:.{dp}f} ± {c['sem']:.{dp}f}" for c in cells)
            + " |"
        )
    best = {}
    for family in ("constant", "linear", "step"):
        family_names = [n for n in table if table[n][0] == family]
        for metric in names:
            top = max(family_names, key=lambda n: rows[n][f"{metric}_summary"]["mean"])
            best[f"{family}/{metric}"] = {"schedule": top, **rows[top][f"{metric}_summary"]}
    for k, v in best.items():
        print(f"best {k}: {v['schedule']}: {v['mean']:.{dp}f} ± {v['sem']:.{dp}f}")
    wall = time.time() - t0
    print(f"{len(jobs)} trainings in {wall:.0f} s")
    if args.env.startswith("lqr"):
        from firepbt.tasks.lqr import optimal_return

        best["optimum"] = {
            "schedule": "best linear K (exact)",
            "mean": optimal_return(),
            "sem": 0.0,
        }
        print(f"best linear policy's expected return: {best['optimum']['mean']:.3f}")
    out = {"env": env_id, "steps": steps, "ent_coef": ENT, "seeds": seeds, "episodes": REPLAY_EPISODES,
           "schedules": rows, "best": best, "wall_s": wall}  # fmt: skip
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
