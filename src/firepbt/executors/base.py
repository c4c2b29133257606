"""The executor interface the run loop uses; executors know nothing of PBT.

An executor owns one trainable per worker. The loop submits training tasks (train
``steps`` with ``hparams``, then evaluate), collects their results, and moves weights
between workers. Every executor must give the same results as the in-process one for
the same sequence of calls (the conformance suite in the tests checks it).
"""

from __future__ import annotations

import math
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
    """What a finished :class:`Task` reports: the score (NaN when diverged), error, time, faults."""

    worker: int
    token: int
    steps: int
    hparams: Hparams
    score: float  # NaN when the network diverged (non-finite, or train/evaluate raised)
    error: str | None = None
    seconds: float = 0.0
    # what went wrong in the executor since the last result (a worker process died, ...);
    # the loop journals each as a "fault" event, whether or not the result is stale
    faults: tuple[dict[str, Any], ...] = ()


def run_task(trainable: Any, task: Task) -> TaskResult:
    """Train then evaluate; a raise or a non-finite score is a diverged network."""
    t0 = time.perf_counter()
    error = None
    try:
        trainable.train(task.steps, dict(task.hparams))
        score = float(trainable.evaluate())
        if not math.isfinite(score):
            error = f"non-finite score {score}"
            score = math.nan
    except Exception as exc:  # the user's code failed: the network diverged (SPEC "Bad scores")
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        score = math.nan
    return TaskResult(
        task.worker, task.token, task.steps, task.hparams, score, error, time.perf_counter() - t0
    )


def replay_on(net: Any, schedule: Sequence[dict[str, Any]], chunk: int) -> dict[str, float | None]:
    """Train ``net`` (fresh) along ``schedule`` in ``chunk``-step calls; its score and test.

    A schedule is a list of segments ``{"start", "end", "hparams"}`` (SPEC "Lineage and
    schedules"); the replay of the best network's schedule is what the paper compares.
    """
    for seg in schedule:
        left = seg["end"] - seg["start"]
        while left > 0:
            k = min(chunk, left)
            net.train(k, dict(seg["hparams"]))
            left -= k
    score = float(net.evaluate())
    test = float(net.test()) if callable(getattr(net, "test", None)) else None
    return {
        "score": score if math.isfinite(score) else None,
        "test": test if test is None or math.isfinite(test) else None,
    }


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

    def replay(
        self, spec: TrainableSpec, seed: int, schedule: Sequence[dict[str, Any]], chunk: int
    ) -> dict[str, float | None]:
        """Train a fresh network (``seed``) along ``schedule`` where this executor trains.

        The default trains here, in the calling process; the process and Ray executors run
        it on one of their workers (its device, its node), never in the controller.
        """
        return replay_on(spec.build(seed), schedule, chunk)

    def close(self) -> None:
        """Release workers."""
