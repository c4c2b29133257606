"""The in-process executor: the reference semantics, deterministic by construction.

Tasks are queued and run lazily, first in first out, when the loop waits. In
asynchronous mode this interleaves workers round-robin, as equally fast workers would
be, without threads or a clock, so the same seed gives the same run.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Sequence
from typing import Any

from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import Executor, Task, TaskResult, run_task


class InProcessExecutor(Executor):
    """Runs every trainable in this process, one task at a time (``executor = "inprocess"``)."""

    def __init__(self) -> None:
        self.trainables: list[Any] = []
        self.queue: deque[Task] = deque()

    def start(self, spec: TrainableSpec, seeds: Sequence[int]) -> None:
        self.trainables = [spec.build(seed) for seed in seeds]

    def submit(self, task: Task) -> None:
        self.queue.append(task)

    def wait(self, *, every: bool) -> list[TaskResult]:
        out: list[TaskResult] = []
        while self.queue and (every or not out):
            task = self.queue.popleft()
            out.append(run_task(self.trainables[task.worker], task))
        return out

    def cancel(self, worker: int) -> None:
        self.queue = deque(t for t in self.queue if t.worker != worker)

    def copy(self, src: int, dst: int) -> None:
        self.set_state(dst, self.trainables[src].state_dict())

    def get_state(self, worker: int) -> Any:
        return copy.deepcopy(self.trainables[worker].state_dict())

    def set_state(self, worker: int, state: Any) -> None:
        self.trainables[worker].load_state_dict(copy.deepcopy(state))

    def test(self, worker: int) -> float | None:
        t = self.trainables[worker]
        return float(t.test()) if hasattr(t, "test") else None
