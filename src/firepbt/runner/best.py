"""The best network (SPEC "The best network") and the run's result.

The experiment's best is the highest Q recorded by any worker; the best of P_1 alone is
the paper's "current best effort". The result holds both, with their schedules, and the
replay of the best schedule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from firepbt._version import __version__

if TYPE_CHECKING:
    from firepbt.runner.loop import Run

RESULT_FILE = "result.json"


def track_best(run: Run, w: int, q: float, score: float) -> float | None:
    """Update the best networks with worker ``w``'s finite Q; its test score if taken."""
    worker = run.decider.workers[w]
    test = None
    if run.best is None or q > run.best["q"]:
        test = run.executor.test(w)
        run.best = record(run, w, q, score, test)
        if run.config.keep_best_checkpoints:
            run.best_state = run.executor.get_state(w)
    if worker.role == "member" and worker.subpop == 1:
        if run.best_p1 is None or q > run.best_p1["q"]:
            if test is None:
                test = run.executor.test(w)
            run.best_p1 = record(run, w, q, score, test)
    return test


def record(run: Run, w: int, q: float, score: float, test: float | None) -> dict[str, Any]:
    worker = run.decider.workers[w]
    return {
        "q": q,
        "score": score,
        "test": test,
        "member": w,
        "role": worker.role,
        "subpopulation": worker.subpop or None,
        "step": run.step[w],
        "net": run.net[w],
    }


def describe(run: Run, rec: dict[str, Any] | None) -> dict[str, Any] | None:
    if rec is None:
        return None
    schedule = run.lineage.schedule(rec["net"], rec["step"])
    out = {k: v for k, v in rec.items() if k not in ("q", "net")}
    out["schedule"] = schedule
    return out


def replay_best(run: Run) -> dict[str, float | None] | None:
    """Replay the best network's schedule from scratch, through the run's executor (on a
    worker, where the hardware is, not in the controller), before the executor closes."""
    best = describe(run, run.best)
    if not run.config.replay or best is None:
        return None
    return run.executor.replay(
        run.spec, run.replay_seed, best["schedule"], run.config.eval_interval
    )


def build_result(run: Run) -> dict[str, Any]:
    best = describe(run, run.best)
    cfg = run.config
    return {
        "firepbt_version": __version__,
        "algorithm": cfg.algorithm.name,
        "mode": cfg.mode,
        "seed": cfg.seed,
        "workers": cfg.workers,
        "direction": cfg.direction,
        "steps": cfg.steps,
        "best": best,
        "best_p1": describe(run, run.best_p1),
        "replay": run.replayed,
        "counts": dict(run.counts),
        "config": run.config_dict,
    }
