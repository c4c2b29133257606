"""The loop's durable state: checkpoint, snapshot and restore (README "Durability").

Everything the loop and the decider know is pickled into a checkpoint at each ready
point (see :mod:`firepbt.runner.checkpoint` for the files); ``restore`` puts it back.
"""

from __future__ import annotations

import time
from dataclasses import astuple
from typing import TYPE_CHECKING, Any

from firepbt.executors.base import Task
from firepbt.runner.events import Checkpoint
from firepbt.runner.failures import Failures

if TYPE_CHECKING:
    from firepbt.runner.loop import Run

# The loop's attributes a checkpoint holds (besides ``evaluating`` and ``pending``).
SAVED = (
    "decider",
    "step",
    "net",
    "hparams",
    "token",
    "busy",
    "since_ready",
    "lineage",
    "best",
    "best_p1",
    "counts",
    "elapsed",
    "last_log",
    "ready_points",
    "checkpointed",
)


def checkpoint(run: Run) -> None:
    """Checkpoint at the top of the loop after a ready point: a consistent state.

    Everything is pickled here; the files are written by the store's background thread
    (:meth:`~firepbt.runner.checkpoint.CheckpointStore.save`), so the run goes on while
    they are fsynced. ``checkpoint_stats`` records the time the loop itself spent.

    In sync mode every worker is idle there. In async mode the busy workers' tasks
    are recorded (``pending``, in submission order) and resubmitted on resume; the
    in-process executor runs queued tasks lazily, so ``get_state`` of a busy worker is
    its state before that task, and the resumed run is the same run.
    """
    if run.store is None or run.ready_points == run.checkpointed:
        return
    assert run.journal is not None
    t0 = time.perf_counter()
    run.checkpointed = run.ready_points
    written = run.store.save(
        run.ready_points,
        journal_bytes=run.journal.bytes,
        journal_sha256=run.journal.sha256,
        config=run.config_dict,
        loop=snapshot(run),
        states=[run.executor.get_state(w) for w in range(len(run.step))],
        best_state=run.best_state,
        step=max(run.step),
        journal_fd=run.journal.dup_fd(),  # fsynced by the writer, before the manifest
    )
    seconds = time.perf_counter() - t0
    run.checkpoint_stats.append((seconds, written))
    if run.callbacks:
        step = max(run.step)
        run.callbacks.event(
            Checkpoint(seq=run.ready_points, step=step, bytes=written, seconds=seconds)
        )


def snapshot(run: Run) -> dict[str, Any]:
    """Everything the loop and the decider know (pickled: see :mod:`firepbt.runner.checkpoint`)."""
    return {
        **{key: getattr(run, key) for key in SAVED},
        "evaluating": sorted(run.evaluating),
        "pending": [astuple(t) for t in run.pending.values()],
        "failures": run.failures,
    }


def restore(run: Run, loop: dict[str, Any]) -> None:
    for key in SAVED:
        setattr(run, key, loop[key])
    run.evaluating = set(loop["evaluating"])
    run.pending = {t.worker: t for t in (Task(*t) for t in loop["pending"])}
    if "failures" in loop:
        run.failures = loop["failures"]
    else:  # a checkpoint from before failures were tracked: every network counts as good
        run.failures = Failures(good=set(range(len(run.lineage.nets))))
        run.failures.tried = set(run.failures.good)
