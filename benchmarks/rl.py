"""Reinforcement learning at the paper's shape on two cores (issue 11 item 3).

PPO (:mod:`firepbt.tasks.ppo`) with 8 vectorised environments x 16 steps per
iteration, 2 epochs of 2 minibatches; lr log-uniform in [1e-4, 1e-2], entropy
coefficient in [1e-4, 0.1]. ``rl-cartpole22``: CartPole-v1, 120 iterations (15,360
environment steps per member). ``rl-acrobot22``: Acrobot-v1, 300 iterations (38,400
steps), chosen because a 6-seed probe showed a linear decay beating every constant
rate; on the 24 replay seeds ``benchmarks/rl_reference.py --env acrobot`` does not
confirm it (the best constant rate is best). Its step counts scale with its length
(``min_steps_before_eval`` and ``max_eval_steps`` 50).
22 workers: FIRE PBT 2 x 8 + 6 evaluators (3/4 of the parent sub-population, as in the
paper), ``min_steps_before_eval`` 20 iterations for P_2 (1/6 of training, the paper's
1e9 of 6e9 actor steps), ``max_eval_steps`` 20 iterations (1/6, the paper's 6e8 of
6e9 is 1/10), eval every iteration, ready every 5. Three seeds by default (the issue-11
sweep used six: ``--seeds 0-5``).

Q = mean return of the last 20 training episodes (noisy); the run's own replay and
"test" use 8 greedy episodes. Because one replay on 8 episodes is itself noisy (the
issue-3 suite showed replays dominated by noise), :func:`replays` replays every run's
best schedule from scratch on ``REPLAY_SEEDS`` fresh seeds and measures each on
``REPLAY_EPISODES`` episodes of the sampled policy (the paper's objective, "the average
episode return", which Q measures) and of the greedy one, and the report gives their
means and standard errors. ``benchmarks/rl_reference.py`` measures hand-written
schedules (tuned constant against decaying rates) the same way.
Figure 5 of the paper (best return so far against environment steps, mean and spread
over seeds) is drawn by :func:`figure5`.

``rl-lqr22`` (fourth RL task, sixth pass): policy-gradient control of a noisy
linear-quadratic system (:mod:`firepbt.tasks.lqr`: a linear Gaussian policy, REINFORCE
with a baseline on 16 episodes of 16 steps per iteration, SGD with momentum and
gradient-norm clipping, lr log-uniform in [1e-5, 1e-3]; 600 iterations = 153,600
environment steps per member), the first RL task here with a learning-rate schedule to
find (``benchmarks/rl_reference.py --env lqr``: a linear decay beats every constant
rate). Same shape and fractions as the others (``min_steps_before_eval`` and
``max_eval_steps`` 100 = 1/6), eval every 5 iterations (Q: the last 64 training
episodes), ready every 25. Its replays measure each replayed policy's exact expected
return (no episode noise), so the only noise left is the replay seed's training.
``rl-lqr50`` is the same with the paper's RL population: 50 workers, FIRE PBT 2 x 18 + 14.
"""

from __future__ import annotations

import json
import math
import statistics
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.common import Benchmark, algorithm
from benchmarks.ppo import _config  # the same PPO config at another shape

NUM_ENVS, ROLLOUT = 8, 16
LQR = "firepbt.tasks.lqr:LQRPolicyGradient"
#: environment steps per iteration of the LQR benchmarks (LQRPolicyGradient's defaults:
#: 16 episodes of 16 steps); PPO's are NUM_ENVS x ROLLOUT
LQR_ENV_STEPS = 16 * 16
REPLAY_SEEDS = list(range(1000, 1024))  # 24 fresh seeds (6 before the second pass)
REPLAY_EPISODES = 32


def benchmarks(quick: bool) -> list[Benchmark]:
    args: dict[str, Any] = {"num_envs": NUM_ENVS, "rollout": ROLLOUT, "epochs": 2,
                            "minibatches": 2}  # fmt: skip
    out = []
    # CartPole: 120 iterations; Acrobot: 300 (38,400 environment steps per member). Both
    # at the paper's shape with the same fractions of training: min_steps_before_eval
    # and max_eval_steps 1/6 of it, ready every 5 iterations.
    for name, env, full in (("rl-cartpole22", None, 120), ("rl-acrobot22", "Acrobot-v1", 300)):
        if quick:
            steps, n, sub, ev, seeds, mins, max_eval = 20, 10, 4, 2, [0], 5, 10
        else:
            steps, n, sub, ev, seeds = full, 22, 8, 6, [0, 1, 2]
            mins = max_eval = full // 6
        fire = dict(subpopulations=2, subpopulation_size=sub, evaluators=ev,
                    max_eval_steps=max_eval, min_steps_before_eval=[mins],
                    p_stat=0.01)  # fmt: skip
        # CartPole's args as before; Acrobot's Q before the first episode ends is its worst
        # return (an episode cut at 500 steps), not PPO's default 0, above every return
        bargs = args if env is None else {**args, "env": env, "initial_score": -500.0}
        cfg = partial(_config, args=bargs, steps=steps)
        label = env or "CartPole-v1"
        out.append(
            Benchmark(
                name=name,
                title=f"PPO on {label}, {n} workers (FIRE PBT 2 x {sub} + {ev})",
                methods={
                    "random": cfg(algorithm("random", n)),
                    "pbt": cfg(algorithm("pbt", n)),
                    "fire": cfg(algorithm("fire", n, **fire)),
                },
                seeds=seeds,
                score="mean training return (last 20 episodes)",
                test="greedy return (8 episodes)",
                post=post,
                sweep_score=sweep_score,
                sweep_what=SWEEP_WHAT,
            )
        )
    out += [lqr_benchmark(quick, n) for n in LQR_SHAPES]
    return out


def lqr_config(algo: dict[str, Any], steps: int) -> dict[str, Any]:
    """The ``rl-lqr22`` config of one method (:mod:`firepbt.tasks.lqr` at its defaults)."""
    return {
        "trainable": LQR,
        "direction": "max",
        "steps": steps,
        "eval_interval": 5,
        "ready_interval": 25,
        "mode": "sync",
        "args": {},
        "space": {"lr": {"kind": "log_uniform", "low": 1e-5, "high": 1e-3}},
        "algorithm": algo,
    }


#: workers -> (sub-population size, evaluators): 22 as the other RL benchmarks; 50 the
#: paper's RL experiments (two sub-populations of 18 and 14 evaluators)
LQR_SHAPES = {22: (8, 6), 50: (18, 14)}


def lqr_benchmark(quick: bool, workers: int = 22) -> Benchmark:
    """``rl-lqr22`` / ``rl-lqr50``: the paper's RL shape on the noisy LQR (module
    docstring) with 22 or the paper's 50 workers."""
    if quick:
        steps, n, sub, ev, seeds, mins, max_eval = 100, 10, 4, 2, [0], 25, 40
    else:
        (sub, ev), n = LQR_SHAPES[workers], workers
        steps, seeds = 600, [0, 1, 2, 3, 4, 5]
        mins = max_eval = steps // 6
    fire = dict(subpopulations=2, subpopulation_size=sub, evaluators=ev,
                max_eval_steps=max_eval, min_steps_before_eval=[mins],
                p_stat=0.01)  # fmt: skip
    return Benchmark(
        name=f"rl-lqr{workers}",
        title=f"Policy gradient on a noisy LQR, {n} workers (FIRE PBT 2 x {sub} + {ev})",
        methods={
            "random": lqr_config(algorithm("random", n), steps),
            "pbt": lqr_config(algorithm("pbt", n), steps),
            "fire": lqr_config(algorithm("fire", n, **fire), steps),
        },
        seeds=seeds,
        score="mean training return (last 64 episodes)",
        test="exact expected return",
        post=post,
        sweep_score=sweep_score,
        sweep_what="exact expected return, 24-seed replay",
    )


SWEEP_WHAT = "sampled return, 24-seed replay"


def sweep_score(run_dir: Path) -> float:
    """A run's seed-sweep score: the mean over the replay seeds of its best schedule's
    replay (:func:`replays`; the agent's own, sampled policy, or the LQR's exact expected
    return), not the run's own one-seed replay, which is mostly noise here."""
    return float(replays(run_dir)["sampled_mean"])


def is_lqr(b: Benchmark) -> bool:
    """Whether ``b`` trains the LQR (its test and replays: the exact expected return)."""
    return bool(next(iter(b.methods.values()))["trainable"] == LQR)


def sem(values: list[float]) -> float:
    """Standard error of the mean of ``values`` (0 for a single value)."""
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0


def replays(run_dir: Path, seeds: list[int] = REPLAY_SEEDS) -> dict[str, Any]:
    """Replay the run's best schedule on fresh ``seeds`` and measure each replayed network
    on ``REPLAY_EPISODES`` episodes twice: the greedy policy (``tests``, ``mean``,
    ``sem``) and the sampled policy (``sampled``, ``sampled_mean``, ``sampled_sem``: the
    average episode return of the agent itself, the paper's RL objective, which Q
    measures during training). Cached in ``run_dir/replays.json``."""
    path = run_dir / "replays.json"
    if path.exists():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached["seeds"] == seeds and "sampled" in cached:
            return dict(cached)
    from firepbt.core.trainable import TrainableSpec
    from firepbt.executors.base import replay_on
    from firepbt.report.plots import best_schedule

    cfg = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))["config"]
    sched = best_schedule(run_dir)
    if cfg["trainable"] == LQR:  # its test is the exact expected return: nothing sampled
        spec = TrainableSpec(cfg["trainable"], cfg["args"])
        exact = [replay_on(spec.build(s), sched, cfg["eval_interval"])["test"] for s in seeds]
        vals = [t if t is not None else -math.inf for t in exact]
        out = {"seeds": seeds, "expected": vals, "mean": statistics.fmean(vals),
               "sem": sem(vals), "sampled": vals, "sampled_mean": statistics.fmean(vals),
               "sampled_sem": sem(vals)}  # fmt: skip
        path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        return out
    args = {**cfg["args"], "test_episodes": REPLAY_EPISODES}
    spec = TrainableSpec(cfg["trainable"], args)
    greedy, sampled = [], []
    for s in seeds:
        net = spec.build(s)
        greedy.append(replay_on(net, sched, cfg["eval_interval"])["test"])
        sampled.append(net.test("sampled"))
    vals = [t if t is not None and math.isfinite(t) else 0.0 for t in greedy]
    samp = [t if math.isfinite(t) else 0.0 for t in sampled]
    out = {"seeds": seeds, "episodes": REPLAY_EPISODES, "tests": vals,
           "mean": statistics.fmean(vals),
           "sem": sem(vals), "sampled": samp, "sampled_mean": statistics.fmean(samp),
           "sampled_sem": sem(samp)}  # fmt: skip
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return out


def top_return_curve(
    run_dir: Path, per_step: int = NUM_ENVS * ROLLOUT
) -> tuple[list[float], list[float]]:
    """(environment steps, highest Q of any worker at that step), from the journal;
    ``per_step`` environment steps per iteration."""
    from firepbt.runner.journal import read_events

    top: dict[int, float] = {}
    for e in read_events(run_dir):
        if e["ev"] == "result" and e.get("score") is not None:
            top[e["step"]] = max(top.get(e["step"], -math.inf), float(e["score"]))
    steps = sorted(top)
    return [s * per_step for s in steps], [top[s] for s in steps]


def figure5(b: Benchmark, report: dict[str, Any], out: Path) -> Path:
    """The paper's Figure 5: top average episode return of any worker at each step
    against environment steps; mean over seeds (line) and min-max (band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from benchmarks.suite import label

    fig, ax = plt.subplots(figsize=(7, 4))
    per_step = LQR_ENV_STEPS if is_lqr(b) else NUM_ENVS * ROLLOUT
    for m, mm in report["methods"].items():
        curves = [top_return_curve(out / b.name / f"{m}-seed{s}", per_step) for s in mm["runs"]]
        if not curves:
            continue
        n = min(len(x) for x, _ in curves)
        x = np.array(curves[0][0][:n])
        ys = np.array([y[:n] for _, y in curves])
        (line,) = ax.plot(x, ys.mean(0), lw=1.5, label=f"{label(m)} (n={len(curves)})")
        if len(curves) > 1:
            ax.fill_between(x, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("environment steps (per worker)")
    ax.set_ylabel("top average episode return of any worker")
    ax.set_title(f"{b.title}\nFigure 5 shape: mean over seeds, band min-max", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"{b.name}-fig5-return.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def post(b: Benchmark, report: dict[str, Any], out: Path) -> list[str]:
    """Multi-seed replays and Figure 5 for the report (called by the suite)."""
    from benchmarks.suite import label

    exact = is_lqr(b)  # the replayed policy's exact expected return
    if exact:
        lines = ["", f"Replays of each run's best schedule on {len(REPLAY_SEEDS)} fresh seeds, "
                 "each replayed policy measured by its exact expected return (no episode "
                 "noise). Mean ± standard error over the replay seeds; then over runs: mean "
                 "of the run means ± standard error (worst run):", "",
                 "| method | per seed of the experiment | over runs |", "|---|---|---|"]  # fmt: skip
    else:
        lines = ["", f"Replays of each run's best schedule on {len(REPLAY_SEEDS)} fresh seeds, "
                 f"each replayed network measured on {REPLAY_EPISODES} episodes: the sampled "
                 "policy (the agent's average episode return, which Q measures and the paper "
                 "reports) and the greedy one (most probable action). Mean ± standard error "
                 "over the replay seeds; then over runs: mean of the run means ± standard "
                 "error (worst run):", "",
                 "| method | sampled, per seed of the experiment | sampled, over runs "
                 "| greedy, over runs |", "|---|---|---|---|"]  # fmt: skip
    f = ".3f" if exact else ".1f"
    for m, mm in report["methods"].items():
        reps = {s: replays(out / b.name / f"{m}-seed{s}") for s in mm["runs"]}
        for s, r in reps.items():
            mm["runs"][s]["replays"] = r
        if not reps:
            continue
        per = "; ".join(
            f"seed {s}: {r['sampled_mean']:{f}} ± {r['sampled_sem']:{f}}" for s, r in reps.items()
        )
        cells = []
        for key in ("sampled_mean",) if exact else ("sampled_mean", "mean"):
            means = [r[key] for r in reps.values()]
            cells.append(f"{statistics.fmean(means):{f}} ± {sem(means):{f}} ({min(means):{f}})")
        lines.append(f"| {label(m)} | {per} | {' | '.join(cells)} |")
    report.setdefault("figures", []).append(figure5(b, report, out).name)
    return lines
