"""The simulated executor: a cluster of workers of different speeds on a virtual clock.

The idea of Syne Tune's simulator backend. Trainables run in this process, as with the
in-process executor (so they should be cheap, e.g. the NQM), but every task takes
*virtual* time: ``steps * step_seconds / speed`` of the worker, where each worker's speed
is drawn once, log-normally (``speed_sigma``), and a fraction ``stragglers`` of the
workers are ``straggler_slowdown`` times slower still. Tasks finish in the order of the
virtual clock, so asynchronous runs see heterogeneous workers, deterministically: the
speeds, failures and therefore the whole run follow from the experiment's seed (a
SeedSequence over the workers' seeds; nothing global).

Optional failures (``failure_rate``): each attempt of a task fails with that probability
after a uniformly drawn part of its duration; the task is retried on the same worker from
the same state (the failed attempt trained nothing) up to ``max_retries`` times, then
fails with a NaN score, as a dead worker process does (:mod:`firepbt.executors.pool`);
every failure is reported to the loop as a fault.

In synchronous mode (and with ``failure_rate = 0``) a run gives the same journal as the
in-process executor, byte for byte (the executor conformance suite checks it): only the
virtual time differs, which the loop never sees. The virtual clock (``clock``) and the
virtual compute used (``compute``, worker-seconds, failed attempts included) are
attributes (:meth:`SimulatedExecutor.summary`). They are not checkpointed: a resumed run
starts a fresh virtual clock, so an asynchronous run resumed on the simulated executor
is a valid run but not the same one (a synchronous one is the same, as in-process).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from firepbt.config.settings import SimulatedSettings
from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import LocalTrainables, Task, TaskResult, run_task


@dataclass
class _Queued:
    task: Task
    begin: float  # virtual time its first attempt starts
    finish: float  # virtual time its result is ready (after any failed attempts)
    faults: tuple[dict[str, Any], ...]
    failed: bool  # every attempt failed: the result is a NaN score


class SimulatedExecutor(LocalTrainables):
    """Virtual-time workers; see the module docstring."""

    def __init__(self, settings: SimulatedSettings | None = None, *, max_retries: int = 3) -> None:
        self.settings = settings or SimulatedSettings()
        self.max_retries = max_retries
        self.trainables: list[Any] = []
        self.speeds = np.zeros(0)
        self.clock = 0.0  # virtual seconds
        self.compute = 0.0  # virtual worker-seconds spent (failed attempts included)
        self.free_at: list[float] = []  # when each worker's latest task ends
        self.heap: list[tuple[float, int]] = []  # (finish, submission number)
        self.queued: dict[int, _Queued] = {}  # submission number -> task
        self.by_worker: dict[int, int] = {}  # worker -> submission number of its task
        self.counter = 0
        self.rng = np.random.default_rng(0)

    # -- the executor interface ------------------------------------------------------

    def start(self, spec: TrainableSpec, seeds: Sequence[int]) -> None:
        s = self.settings
        self.rng = np.random.default_rng(np.random.SeedSequence([int(x) for x in seeds]))
        n = len(seeds)
        speeds = np.exp(self.rng.normal(0.0, s.speed_sigma, n))
        slow = self.rng.permutation(n)[: int(round(s.stragglers * n))]
        speeds[slow] /= s.straggler_slowdown
        self.speeds = speeds
        self.free_at = [0.0] * n
        self.trainables = [spec.build(seed) for seed in seeds]

    def submit(self, task: Task) -> None:
        """Queue ``task``; its attempts, failures and finish time are drawn now."""
        w = task.worker
        begin = max(self.clock, self.free_at[w])
        duration = task.steps * self.settings.step_seconds / float(self.speeds[w])
        t, faults, failed = begin, [], False
        for attempt in range(1, self.max_retries + 2):
            p = self.settings.failure_rate
            if p > 0 and self.rng.random() < p:  # this attempt fails part-way
                t += float(self.rng.uniform(0.0, 1.0)) * duration
                action = "retry" if attempt <= self.max_retries else "failed"
                faults.append(
                    {
                        "slot": w,
                        "reason": "simulated failure",
                        "worker": w,
                        "token": task.token,
                        "attempt": attempt,
                        "action": action,
                    }
                )
                failed = action == "failed"
                if failed:
                    break
            else:
                t += duration
                break
        n = self.counter
        self.counter += 1
        self.queued[n] = _Queued(task, begin, t, tuple(faults), failed)
        self.by_worker[w] = n
        self.free_at[w] = t
        self.compute += t - begin
        heapq.heappush(self.heap, (t, n))

    def wait(self, *, every: bool) -> list[TaskResult]:
        out: list[TaskResult] = []
        while self.heap and (every or not out):
            finish, n = heapq.heappop(self.heap)
            q = self.queued.pop(n, None)
            if q is None:
                continue  # cancelled
            task = q.task
            del self.by_worker[task.worker]
            self.clock = max(self.clock, finish)
            if q.failed:
                error = f"worker failed {len(q.faults)} times (simulated failure); gave up"
                result = TaskResult(
                    task.worker, task.token, task.steps, task.hparams, math.nan, error
                )
            else:
                result = run_task(self.trainables[task.worker], task)
            out.append(replace(result, faults=q.faults) if q.faults else result)
        return out

    def cancel(self, worker: int) -> None:
        n = self.by_worker.pop(worker, None)
        if n is None:
            return
        q = self.queued.pop(n)
        # the worker stops now: the virtual time it would still have spent is not spent
        self.compute -= q.finish - min(max(self.clock, q.begin), q.finish)
        self.free_at[worker] = self.clock

    def timing(self) -> dict[str, float]:
        """Virtual seconds to the end of the run and virtual compute (worker-seconds)."""
        return {"virtual_seconds": self.clock, "virtual_compute": self.compute}

    def summary(self) -> dict[str, Any]:
        """Virtual wall-clock seconds, virtual compute (worker-seconds) and the speeds."""
        return {**self.timing(), "speeds": [float(v) for v in self.speeds]}
