"""The in-process executor: the reference semantics, deterministic by construction.

Tasks are queued and run lazily, first in first out, when the loop waits. In
asynchronous mode this interleaves workers round-robin, as equally fast workers would
be, without threads or a clock, so the same seed gives the same run.

A task runs in the controller's own thread, so it cannot be stopped: with
``task_timeout`` set, a watchdog thread only *reports* a task that overran it (on
stderr, while it still runs) and the result is journalled with a ``timeout`` fault
when it comes; so are a test and the replay that overrun their limits (``task_timeout``,
and for the replay once per training call plus once). The process and Ray executors
kill and retry such a task, test or replay.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import LocalTrainables, Task, TaskResult, replay_limit, run_task


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class InProcessExecutor(LocalTrainables):
    """Runs every trainable in this process, one task at a time (``executor = "inprocess"``)."""

    def __init__(
        self, *, task_timeout: float | None = None, notify: Callable[[str], None] = _to_stderr
    ) -> None:
        self.trainables: list[Any] = []
        self.queue: deque[Task] = deque()
        self.task_timeout = task_timeout
        self.notify = notify  # where the watchdog reports a hang (another thread)
        self.faults: list[dict[str, Any]] = []  # overrunning tests and replays (take_faults)

    def start(self, spec: TrainableSpec, seeds: Sequence[int]) -> None:
        self.trainables = [spec.build(seed) for seed in seeds]

    def submit(self, task: Task) -> None:
        self.queue.append(task)

    def wait(self, *, every: bool) -> list[TaskResult]:
        out: list[TaskResult] = []
        while self.queue and (every or not out):
            task = self.queue.popleft()
            out.append(self._run(task))
        return out

    def test(self, worker: int) -> float | None:
        """The test, watched like a task: it may take ``task_timeout`` (reported only)."""
        return self._watched(
            lambda: LocalTrainables.test(self, worker), self.task_timeout, worker, "test"
        )

    def replay(
        self, spec: TrainableSpec, seed: int, schedule: Sequence[dict[str, Any]], chunk: int
    ) -> dict[str, float | None]:
        """The replay, watched: it may take ``task_timeout`` per training call plus one."""
        limit = replay_limit(self.task_timeout, schedule, chunk)
        return self._watched(
            lambda: LocalTrainables.replay(self, spec, seed, schedule, chunk), limit, None, "replay"
        )

    def take_faults(self) -> list[dict[str, Any]]:
        faults, self.faults = self.faults, []
        return faults

    def _watched(
        self, call: Callable[[], Any], limit: float | None, worker: int | None, during: str
    ) -> Any:
        """``call()``; past ``limit`` seconds a watchdog reports it (it cannot be stopped
        here) and, once it returns, a ``timeout`` fault is recorded (:meth:`take_faults`)."""
        if not limit:
            return call()
        what = f"worker {worker}'s test" if during == "test" else "the replay"
        message = (
            f"firepbt: {what} has run for more than its time limit ({limit:g} s, from "
            "task_timeout) and is still running. The in-process executor runs it in the "
            'controller\'s own thread and cannot stop it; set executor = "processes" to '
            "have it killed and retried."
        )
        t0 = time.perf_counter()
        with self._watchdog(limit, message) as overran:
            try:
                return call()
            finally:
                if overran.is_set():
                    self.faults.append(
                        {
                            "slot": None,
                            "worker": worker,
                            "reason": "timeout",
                            "timeout_s": limit,
                            "seconds": round(time.perf_counter() - t0, 3),
                            "during": during,
                            "action": "overran (in-process: not stopped)",
                        }
                    )

    @contextmanager
    def _watchdog(self, limit: float, message: str) -> Iterator[threading.Event]:
        """The ``with`` body runs here; past ``limit`` seconds a timer thread sends
        ``message`` to ``notify`` while it still runs and sets the yielded event."""
        overran = threading.Event()

        def report() -> None:
            overran.set()
            self.notify(message)

        timer = threading.Timer(limit, report)
        timer.daemon = True
        timer.start()
        try:
            yield overran
        finally:
            timer.cancel()

    def _run(self, task: Task) -> TaskResult:
        if not self.task_timeout:
            return run_task(self.trainables[task.worker], task)
        limit = self.task_timeout
        message = (
            f"firepbt: worker {task.worker}'s task (train {task.steps} steps, then "
            f"evaluate) has run for more than task_timeout = {limit:g} s and is still "
            "running. The in-process executor runs it in the controller's own thread and "
            'cannot stop it; set executor = "processes" to have tasks that overrun '
            "killed and retried."
        )
        with self._watchdog(limit, message) as overran:
            result = run_task(self.trainables[task.worker], task)
        if not overran.is_set():
            return result
        fault = {
            "slot": None,
            "worker": task.worker,
            "token": task.token,
            "reason": "timeout",
            "timeout_s": limit,
            "seconds": round(result.seconds, 3),
            "action": "overran (in-process: not stopped)",
        }
        return replace(result, faults=(*result.faults, fault))

    def cancel(self, worker: int) -> None:
        self.queue = deque(t for t in self.queue if t.worker != worker)
