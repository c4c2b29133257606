"""The async budget: no member trains past ``steps`` however the workers' speeds race.

A scripted executor reproduces the race deterministically: the in-process executor with
a virtual clock, where each worker trains at its own speed and ``wait`` returns the task
that finishes first. Evaluators three times faster than members get ahead of every
member; before the fix an evaluator trained past the budget and its success copy brought
its step count (above ``steps``) to a member (SPEC "The budget and the end").
"""

from __future__ import annotations

import heapq
import itertools

import pytest
from test_executors import check_accounting, config

from firepbt.api import run
from firepbt.executors import InProcessExecutor, Task
from firepbt.executors.base import TaskResult, run_task


class Raced(InProcessExecutor):
    """In-process, but a task finishes at virtual time ``start + steps / speed(worker)``."""

    def __init__(self, speed) -> None:
        super().__init__()
        self.speed = speed
        self.now = 0.0
        self.free_at: dict[int, float] = {}
        self.heap: list[tuple[float, int, Task]] = []
        self.order = itertools.count()

    def submit(self, task: Task) -> None:
        start = max(self.now, self.free_at.get(task.worker, 0.0))
        end = start + task.steps / self.speed(task.worker)
        self.free_at[task.worker] = end
        heapq.heappush(self.heap, (end, next(self.order), task))

    def wait(self, *, every: bool) -> list[TaskResult]:
        out: list[TaskResult] = []
        while self.heap and (every or not out):
            self.now, _, task = heapq.heappop(self.heap)
            out.append(run_task(self.trainables[task.worker], task))
        return out

    def cancel(self, worker: int) -> None:
        self.heap = [e for e in self.heap if e[2].worker != worker]
        heapq.heapify(self.heap)
        self.free_at.pop(worker, None)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_fast_evaluators_never_carry_a_member_past_the_budget(tmp_path, seed):
    cfg = config("fire", mode="async", seed=seed)
    members = cfg.algorithm.subpopulations * cfg.algorithm.subpopulation_size
    result = run(cfg, tmp_path / "r", executor=Raced(lambda w: 3.0 if w >= members else 1.0))
    check_accounting(tmp_path / "r", 300)  # every member ends at exactly 300
    assert result["counts"]["success"] >= 1  # the race was run: evaluators did succeed
