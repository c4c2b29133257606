"""The in-process executor: the reference semantics, deterministic by construction.

Tasks are queued and run lazily, first in first out, when the loop waits. In
asynchronous mode this interleaves workers round-robin, as equally fast workers would
be, without threads or a clock, so the same seed gives the same run.

A task runs in the controller's own thread, so it cannot be stopped: with
``task_timeout`` set, a watchdog thread only *reports* a task that overran it (on
stderr, while it still runs) and the result is journalled with a ``timeout`` fault
when it comes. The process and Ray executors kill and retry such a task.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import LocalTrainables, Task, TaskResult, run_task


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

    def _run(self, task: Task) -> TaskResult:
        if not self.task_timeout:
            return run_task(self.trainables[task.worker], task)
        limit = self.task_timeout
        overran = threading.Event()

        def report() -> None:
            overran.set()
            self.notify(
                f"firepbt: worker {task.worker}'s task (train {task.steps} steps, then "
                f"evaluate) has run for more than task_timeout = {limit:g} s and is still "
                "running. The in-process executor runs it in the controller's own thread and "
                'cannot stop it; set executor = "processes" to have tasks that overrun '
                "killed and retried."
            )

        timer = threading.Timer(limit, report)
        timer.daemon = True
        timer.start()
        try:
            result = run_task(self.trainables[task.worker], task)
        finally:
            timer.cancel()
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
