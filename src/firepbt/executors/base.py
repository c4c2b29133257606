"""The executor interface the run loop uses; executors know nothing of PBT.

An executor owns one trainable per worker. The loop submits training tasks (train
``steps`` with ``hparams``, then evaluate), collects their results, and moves weights
between workers. Every executor must give the same results as the in-process one for
the same sequence of calls (the conformance suite in the tests checks it).
"""

from __future__ import annotations

import copy
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from firepbt.core.errors import UserCodeError, describe_exception
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
    error: str | None = None  # one line: the exception, or "non-finite score nan"
    seconds: float = 0.0
    # what went wrong in the executor since the last result (a worker process died, ...);
    # the loop journals each as a "fault" event, whether or not the result is stale
    faults: tuple[dict[str, Any], ...] = ()
    # when train/evaluate raised: the traceback from the user's code down, and the
    # "file:line" of the user's frame it points at (the loop tells bugs from divergence)
    traceback: str | None = None
    where: str | None = None


class BadScore(TypeError):
    """``evaluate`` returned something that is not a number (a forgotten ``return``?)."""

    def __init__(self, trainable: Any, value: Any) -> None:
        name = type(trainable).__name__
        super().__init__(
            f"{name}.evaluate() returned {value!r}, not a number (does it forget to return "
            "the score?)"
        )
        self.where: str | None = None
        try:
            code = type(trainable).evaluate.__code__
            self.where = f"{code.co_filename}:{code.co_firstlineno}"
        except AttributeError:
            pass


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
        value = trainable.evaluate()
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise BadScore(trainable, value) from None
        if not math.isfinite(score):
            error = f"{NONFINITE} {score}"
            score = math.nan
    except BadScore as exc:
        error, where = f"TypeError: {exc}", exc.where
        tb = f"TypeError: {exc}\n"
        if exc.where:
            path, _, line = exc.where.rpartition(":")
            tb = f'  File "{path}", line {line}, in evaluate\n' + tb
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
    test = take_test(net)
    return {
        "score": score if math.isfinite(score) else None,
        "test": test if test is None or math.isfinite(test) else None,
    }


def take_test(net: Any) -> float | None:
    """The network's test score; None where the trainable has no ``test``.

    A raise in ``test`` is a bug in the user's code (only a network with a finite Q is
    tested, so it is not divergence): :class:`~firepbt.core.errors.UserCodeError` with
    the user's traceback, which stops the run (the brief: show it and stop).
    """
    fn = getattr(net, "test", None)
    if not callable(fn):
        return None
    try:
        return float(fn())
    except Exception as exc:  # the user's test() failed
        line, tb, where = describe_exception(exc)
        at = f" at {where}" if where else ""
        raise UserCodeError(
            f"the trainable's test() raised {line}{at}. That is a bug in the trainable's "
            "code, not divergence: the run stopped",
            tb,
            shown=False,
        ) from None


def replay_limit(
    task_timeout: float | None, schedule: Sequence[dict[str, Any]], chunk: int
) -> float | None:
    """The seconds a replay may take under ``task_timeout``: one ``task_timeout`` per
    ``chunk``-step training call it makes, plus one for its evaluation (None: no limit)."""
    if task_timeout is None:
        return None
    calls = sum(-(-(seg["end"] - seg["start"]) // chunk) for seg in schedule)
    return task_timeout * (calls + 1)


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

    def take_faults(self) -> list[dict[str, Any]]:
        """Faults that happened outside a task (a worker lost or timed out while it ran a
        test or a replay), for the loop to journal; each is returned once. Faults during
        tasks travel with the task's result (``TaskResult.faults``)."""
        return []

    def timing(self) -> dict[str, float]:
        """What the executor measured of the run's time, for ``timing.json``; empty for
        the executors on real hardware (the simulated one: its virtual clock and compute)."""
        return {}

    def close(self) -> None:
        """Release workers."""


class LocalTrainables(Executor):
    """An executor that holds every worker's trainable in this process (``trainables``):
    weight copies and states are deep copies of ``state_dict`` (in-process, simulated)."""

    trainables: list[Any]

    def copy(self, src: int, dst: int) -> None:
        self.set_state(dst, self.trainables[src].state_dict())

    def get_state(self, worker: int) -> Any:
        return copy.deepcopy(self.trainables[worker].state_dict())

    def set_state(self, worker: int, state: Any) -> None:
        self.trainables[worker].load_state_dict(copy.deepcopy(state))

    def test(self, worker: int) -> float | None:
        return take_test(self.trainables[worker])
