"""The two drivers of the loop: synchronous (the paper's) and asynchronous (SPEC "PBT").

Synchronous: every worker trains one evaluation interval, then at ready points the
population decides together. Asynchronous: each worker decides alone when it is ready,
against the latest state of the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firepbt.runner.commands import apply, handle, invalidate, submit
from firepbt.runner.state import checkpoint

if TYPE_CHECKING:
    from firepbt.runner.loop import Run


def drive_sync(run: Run) -> None:
    """All workers train one evaluation interval, then (at ready points) decide together."""
    cfg = run.config
    while run.members_left():
        checkpoint(run)
        for w in run.active():
            submit(run, w)
        for r in sorted(run.executor.wait(every=True), key=lambda r: r.worker):
            handle(run, r)
        run.elapsed += cfg.eval_interval
        if run.elapsed % cfg.ready_interval == 0 and run.members_left():
            ready = run.active()
            apply(run, run.decider.on_ready(ready))
            run.ready_points += 1
            run.progress(run.elapsed)


def drive_async(run: Run) -> None:
    """Each worker decides alone when ready, against the latest state of the others.

    The population's ready points, where it is checkpointed, are the steps at which
    the slowest member crosses a multiple of ``ready_interval``. The run ends when every
    member has reached the budget, or with ``end = "p1"`` every member of P_1 (the
    networks the result is taken from; a straggler of a parent sub-population would
    otherwise hold the whole run up, benchmarks/RESULTS.md, issue 12); workers still
    training then are stopped and their tasks cancelled.
    """
    cfg = run.config
    members = [m.id for m in run.decider.members(1 if cfg.end == "p1" else None)]
    member = [w.role == "member" for w in run.decider.workers]
    first_k = members == list(range(len(members)))  # members are workers 0..k-1

    def slowest() -> int:
        if first_k:
            return min(run.step[: len(members)])
        return min(map(run.step.__getitem__, members))

    # The idle workers that may train again are those that became idle since the last
    # pass (a result, a weight copy, a freed evaluator): submitting them in id order is
    # the same as scanning every active worker (members before evaluators), in O(1) per
    # result rather than O(workers), which mattered at 1000 workers (issue 12).
    run.woken = set(range(len(run.step)))
    done = slowest()
    while done < cfg.steps:  # some member has budget left
        checkpoint(run)
        for w in sorted(run.woken):
            # an evaluator ahead of the members stops at the budget: its weights, and their
            # step count, may still be copied into a member (SPEC "The budget and the end")
            if not run.busy[w] and run.step[w] < cfg.steps and (member[w] or w in run.evaluating):
                submit(run, w)
        run.woken.clear()
        results = run.executor.wait(every=False)
        if not results:
            break
        for r in results:
            if not handle(run, r):
                continue
            w = r.worker
            run.since_ready[w] += r.steps
            is_member = run.decider.workers[w].role == "member"
            if is_member and run.step[w] >= cfg.steps:
                continue
            final = run.step[w] >= cfg.steps  # an evaluator that may train no further
            if run.since_ready[w] >= cfg.ready_interval or final:
                run.since_ready[w] = 0
                apply(run, run.decider.on_ready([w]))
        done = slowest()
        if done - run.last_log >= cfg.ready_interval:
            run.last_log = done
            run.ready_points += 1
            run.progress(done)
    for w in list(run.pending):  # the end: what still trains is stopped (not journalled:
        invalidate(run, w)  # no decision, and no result, comes of it)
