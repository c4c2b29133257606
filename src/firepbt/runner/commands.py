"""Carrying out a decider's commands on an executor, and taking in its results.

Journal before effect: every decision is written (and flushed) to the journal before
the loop or the executor acts on it (README "Durability and resume").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from firepbt.algorithms.base import Assign, Command, CopyWeights, Free, SetHparams
from firepbt.executors.base import Task, TaskResult
from firepbt.runner.best import track_best
from firepbt.runner.failures import check_for_bug, record_failure

if TYPE_CHECKING:
    from firepbt.runner.loop import Run


def submit(run: Run, w: int) -> None:
    run.busy[w] = True
    task = Task(w, run.token[w], run.config.eval_interval, dict(run.hparams[w]))
    run.pending.pop(w, None)  # at most one task a worker; the dict keeps submission order
    run.pending[w] = task
    run.executor.submit(task)


def invalidate(run: Run, w: int) -> None:
    """A queued or running task of ``w`` no longer belongs to the network it holds."""
    if run.busy[w]:
        run.executor.cancel(w)
        run.pending.pop(w, None)
    run.token[w] += 1
    run.busy[w] = False
    run.woken.add(w)


def handle(run: Run, r: TaskResult) -> bool:
    """Record a task's result; False when it is stale."""
    w = r.worker
    for fault in r.faults:  # a worker process or actor died (executors/pool.py)
        run.emit({"ev": "fault", **fault})
    if r.token != run.token[w]:
        return False
    assert run.journal is not None
    run.busy[w] = False
    run.woken.add(w)
    run.pending.pop(w, None)
    start = run.step[w]
    run.step[w] = start + r.steps
    run.lineage.train(run.net[w], start, run.step[w], r.hparams)
    finite = math.isfinite(r.score)
    q = run.sign * r.score if finite else math.nan
    test = track_best(run, w, q, r.score) if finite else None
    if not finite:
        run.counts["diverged"] += 1
    failed_before = len(run.failures.failed_first)
    error_id = record_failure(run, w, r, start)
    event: dict[str, Any] = {
        "ev": "result",
        "worker": w,
        "net": run.net[w],
        "start": start,
        "step": run.step[w],
        "hparams": r.hparams,
        "score": r.score if finite else None,
    }
    if test is not None:
        event["test"] = test
    if r.error:
        event["error"] = r.error
    if error_id is not None:
        event["error_id"] = error_id
    run.emit(event)
    check_for_bug(run, failed_before)
    apply(run, run.decider.on_result(w, run.step[w], q))
    return True


def apply(run: Run, cmds: list[Command]) -> None:
    assert run.journal is not None
    for cmd in cmds:
        # Journal before effect: every decision is written (and flushed) before the
        # loop or the executor acts on it, so a killed controller never leaves an
        # effect the journal does not explain.
        if isinstance(cmd, SetHparams):
            run.emit(
                {
                    "ev": "hparams",
                    "worker": cmd.worker,
                    "net": run.net[cmd.worker],
                    "step": run.step[cmd.worker],
                    "hparams": cmd.hparams,
                    "reason": cmd.reason,
                }
            )
            run.hparams[cmd.worker] = dict(cmd.hparams)
        elif isinstance(cmd, CopyWeights):
            src, dst = cmd.src, cmd.dst
            new = len(run.lineage.nets)  # the id the fork below gives
            run.emit(
                {
                    "ev": "copy",
                    "src": src,
                    "dst": dst,
                    "step": run.step[src],
                    "src_net": run.net[src],
                    "net": new,
                    "reason": cmd.reason,
                }
            )
            invalidate(run, dst)
            run.executor.copy(src, dst)
            run.lineage.fork(run.net[src], run.step[src])
            run.failures.fork(run.net[src], new)
            run.net[dst] = new
            run.step[dst] = run.step[src]
            if cmd.reason in ("exploit", "success"):
                run.counts[cmd.reason] += 1
        elif isinstance(cmd, Assign):
            run.emit(
                {
                    "ev": "assign",
                    "evaluator": cmd.evaluator,
                    "parent": cmd.parent,
                    "target": cmd.target,
                }
            )
            run.evaluating.add(cmd.evaluator)
            run.since_ready[cmd.evaluator] = 0
            run.counts["assign"] += 1
        elif isinstance(cmd, Free):
            run.emit({"ev": "free", "evaluator": cmd.evaluator, "reason": cmd.reason})
            run.evaluating.discard(cmd.evaluator)
            invalidate(run, cmd.evaluator)
            if cmd.reason == "stop":
                run.counts["stop"] += 1
    checks = getattr(run.decider, "checks", None)
    if checks:
        for c in checks:
            run.emit({"ev": "check", **c})
        checks.clear()
