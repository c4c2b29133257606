"""The executor interface the run loop uses; executors know nothing of PBT.

An executor owns one trainable per worker. The loop submits training tasks (train
``steps`` with ``hparams``, then evaluate), collects their results, and moves weights
between workers. Every executor must give the same results as the in-process one for
the same sequence of calls (the conformance suite in the tests checks it).
"""

from __future__ import annotations

import math
import os
import sysconfig
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from firepbt.core.trainable import Hparams, TrainableSpec


@dataclass(frozen=True)
class Task:
    """Train ``worker`` for ``steps`` with ``hparams``, then evaluate."""

    worker: int
    token: int  # the loop's generation counter of the worker; stale results are dropped
    steps: int
    hparams: Hparams


@dataclass(frozen=True)
class TaskResult:
    worker: int
    token: int
    steps: int
    hparams: Hparams
    score: float  # NaN when the network diverged (non-finite, or train/evaluate raised)
    error: str | None = None  # one line: the exception, or "non-finite score nan"
    seconds: float = 0.0
    # what went wrong in the executor since the last result (a worker process died, ...);
    # the loop journals each as a "fault" event, whether or not the result is stale
    faults: tuple[dict[str, Any], ...] = ()
    # when train/evaluate raised: the traceback from the user's code down, and the
    # "file:line" of the user's frame it points at (the loop tells bugs from divergence)
    traceback: str | None = None
    where: str | None = None


_LIBRARY_DIRS = tuple(
    {
        os.path.normpath(p)
        for p in (
            sysconfig.get_paths()["stdlib"],
            sysconfig.get_paths()["purelib"],
            sysconfig.get_paths()["platlib"],
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))),  # firepbt itself
        )
    }
)


def user_frame(tb: traceback.StackSummary) -> traceback.FrameSummary | None:
    """The innermost frame in the user's code (not the standard library, an installed
    package or firepbt), else the innermost frame."""
    for frame in reversed(tb):
        path = os.path.normpath(os.path.abspath(frame.filename))
        if not path.startswith(_LIBRARY_DIRS) and not frame.filename.startswith("<"):
            return frame
    return tb[-1] if len(tb) else None


def describe_exception(exc: BaseException, skip: int = 1) -> tuple[str, str, str | None]:
    """(one line, the traceback without firepbt's first ``skip`` frames, "file:line")."""
    tb = exc.__traceback__
    for _ in range(skip):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    line = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    frame = user_frame(traceback.extract_tb(tb))
    where = f"{frame.filename}:{frame.lineno}" if frame is not None else None
    return line.splitlines()[-1] if line else type(exc).__name__, text, where


NONFINITE = "non-finite score"  # how a TaskResult's error says the network diverged


def run_task(trainable: Any, task: Task) -> TaskResult:
    """Train then evaluate; a raise or a non-finite score is a failed network.

    The loop decides what a failure means (SPEC "Bad scores"): a non-finite score, or a
    raise after the network trained successfully before, is divergence; a raise of a
    network that never trained successfully is a candidate bug in the user's code.
    """
    t0 = time.perf_counter()
    error = tb = where = None
    try:
        trainable.train(task.steps, dict(task.hparams))
        score = float(trainable.evaluate())
        if not math.isfinite(score):
            error = f"{NONFINITE} {score}"
            score = math.nan
    except Exception as exc:  # the user's code failed
        error, tb, where = describe_exception(exc)
        score = math.nan
    return TaskResult(
        task.worker,
        task.token,
        task.steps,
        task.hparams,
        score,
        error,
        time.perf_counter() - t0,
        traceback=tb,
        where=where,
    )


class Executor(ABC):
    """Runs trainables for the loop."""

    @abstractmethod
    def start(self, spec: TrainableSpec, seeds: Sequence[int]) -> None:
        """Build one trainable per worker, worker ``i`` with seed ``seeds[i]``."""

    @abstractmethod
    def submit(self, task: Task) -> None:
        """Queue a task; tasks of one worker run in submission order."""

    @abstractmethod
    def wait(self, *, every: bool) -> list[TaskResult]:
        """Block until every queued task (``every``) or at least one has finished."""

    @abstractmethod
    def cancel(self, worker: int) -> None:
        """Drop ``worker``'s queued task if it has not started (its result would be stale)."""

    @abstractmethod
    def copy(self, src: int, dst: int) -> None:
        """``dst`` takes the weights ``src`` held after its last finished task."""

    @abstractmethod
    def test(self, worker: int) -> float | None:
        """The held-out score of an idle worker's network (None if the trainable has no test)."""

    @abstractmethod
    def get_state(self, worker: int) -> Any:
        """The state_dict of an idle worker's network (for checkpoints)."""

    @abstractmethod
    def set_state(self, worker: int, state: Any) -> None:
        """Load ``state`` into an idle worker (resume, fault recovery)."""

    def close(self) -> None:
        """Release workers."""
