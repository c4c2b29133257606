"""What the process and Ray executors share: slots, a task queue, states kept by reference.

A *slot* is one long-lived trainer (a process, a Ray actor) holding one trainable, which
it reuses for whichever worker it runs next (``load_state_dict``, not a rebuild). The
pool keeps, for every worker, a reference to the state its network held after its last
finished task (a file, an object-store entry). That gives, with no extra traffic:

- ``copy(src, dst)``: ``dst`` now points at ``src``'s reference (no bytes move);
- ``get_state`` / ``set_state``: read or replace the reference;
- fault recovery: a slot that dies is respawned and the task re-run from the worker's
  reference, at most ``max_retries`` times; then it fails (NaN score, an error), the
  decider treats the network as diverged and exploit replaces it;
- timeouts: with ``task_timeout`` set, a slot whose running task overran it is killed
  (with its process or actor) and handled as a dead slot whose reason is ``timeout``.

A *generation* per worker, bumped by ``cancel``/``copy``/``set_state``, marks a task
started before the change: its result is returned (the loop drops it by token) but the
state it produced is discarded, as the in-process executor would never have run it.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from firepbt.core.errors import ExecutorError
from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import Executor, Task, TaskResult, replay_limit


@dataclass(frozen=True)
class Ref:
    """A stored state: ``key`` is unique for the pool's life, ``handle`` the transport's."""

    key: int
    handle: Any


@dataclass
class Job:
    task: Task
    gen: int
    attempts: int = 0
    ref_in: Ref | None = None


@dataclass(frozen=True)
class Dead:
    """A slot's process or actor is gone."""

    reason: str


@dataclass
class _Refs:
    counts: dict[int, int] = field(default_factory=dict)
    by_key: dict[int, Ref] = field(default_factory=dict)


class SlotPool(Executor):
    """The scheduling, state-keeping and retry logic; subclasses move messages."""

    depth = 1  # jobs sent ahead to one slot (2 hides the controller's round trip)

    def __init__(
        self, slots: int, *, max_retries: int = 3, task_timeout: float | None = None
    ) -> None:
        self.n_slots = slots
        self.max_retries = max_retries
        self.task_timeout = task_timeout
        self.since: dict[int, float] = {}  # slot -> when its running (oldest) job started
        self.refs: list[Ref] = []
        self.gen: list[int] = []
        self.queue: deque[Job] = deque()
        self.running: dict[int, deque[Job]] = {}  # slot -> its jobs, oldest (running) first
        self.faults: list[dict[str, Any]] = []
        self._counts = _Refs()
        # results that arrived while a test waited for a free slot: the loop has not seen
        # them, so their states become the workers' only when wait() hands them over
        # (a checkpoint taken meanwhile must see each worker as before that task)
        self._parked: list[tuple[TaskResult, Job, Ref | None]] = []
        self.has_test = False
        # slots that cannot take work now (a replacement Ray actor waiting for room on the
        # cluster after its node was lost); the transport adds them and removes them (in
        # poll) once they are up; the scheduler skips them
        self.down: set[int] = set()

    # -- what a transport provides ---------------------------------------------------

    @abstractmethod
    def launch(self, slot: int) -> None:
        """Start (or restart) a slot and load the trainable's class there (ConfigError)."""

    def launch_all(self) -> None:
        """Start every slot (transports that can start them in parallel override this)."""
        for s in range(self.n_slots):
            self.launch(s)

    @abstractmethod
    def build(self, assignments: dict[int, list[tuple[int, int]]]) -> dict[int, Ref]:
        """Slot -> [(worker, seed)]: build fresh trainables, return each worker's state."""

    @abstractmethod
    def dispatch(self, slot: int, job: Job) -> None:
        """Start ``job`` on an idle slot (asynchronously)."""

    @abstractmethod
    def poll(
        self, block: bool, timeout: float | None = None
    ) -> list[tuple[int, tuple[TaskResult, Ref | None, Job] | Dead]]:
        """Finished jobs of running slots (result, new state or None, the job), dead slots;
        blocking at most ``timeout`` seconds (None: until something happens)."""

    @abstractmethod
    def kill(self, slot: int) -> None:
        """Stop a slot's process or actor now (its task overran ``task_timeout``)."""

    @abstractmethod
    def run_test(self, slot: int, ref: Ref, timeout: float | None) -> float | Dead | None:
        """Load ``ref`` into an idle slot and return its test score (None: test raised);
        past ``timeout`` seconds the slot is killed and ``Dead("timeout")`` returned."""

    @abstractmethod
    def run_replay(
        self,
        slot: int,
        seed: int,
        schedule: Sequence[dict[str, Any]],
        chunk: int,
        timeout: float | None,
    ) -> dict[str, float | None] | Dead:
        """Build a fresh trainable on an idle slot and train it along ``schedule``; past
        ``timeout`` seconds the slot is killed and ``Dead("timeout")`` returned."""

    @abstractmethod
    def put(self, state: Any) -> Ref:
        """Store a network's state where the slots can load it; returns its reference."""

    @abstractmethod
    def get(self, ref: Ref) -> Any:
        """The state stored under ``ref``."""

    @abstractmethod
    def drop(self, ref: Ref) -> None:
        """Free a state nobody points at any more."""

    # -- reference counting ----------------------------------------------------------

    def _hold(self, ref: Ref) -> Ref:
        self._counts.counts[ref.key] = self._counts.counts.get(ref.key, 0) + 1
        self._counts.by_key[ref.key] = ref
        return ref

    def _release(self, ref: Ref | None) -> None:
        if ref is None:
            return
        n = self._counts.counts[ref.key] - 1
        if n:
            self._counts.counts[ref.key] = n
        else:
            del self._counts.counts[ref.key]
            self.drop(self._counts.by_key.pop(ref.key))

    def _point(self, worker: int, ref: Ref) -> None:
        old = self.refs[worker]
        self.refs[worker] = self._hold(ref)
        self._release(old)

    # -- the Executor interface ------------------------------------------------------

    def start(self, spec: TrainableSpec, seeds: Sequence[int]) -> None:
        self.has_test = spec.has_test
        self.n_slots = max(1, min(self.n_slots, len(seeds)))
        self.launch_all()
        plan: dict[int, list[tuple[int, int]]] = {s: [] for s in range(self.n_slots)}
        for w, seed in enumerate(seeds):
            plan[w % self.n_slots].append((w, seed))
        built = self.build(plan)
        self.refs = [self._hold(built[w]) for w in range(len(seeds))]
        self.gen = [0] * len(seeds)

    def submit(self, task: Task) -> None:
        self.queue.append(Job(task, self.gen[task.worker]))
        self._dispatch_free()

    def cancel(self, worker: int) -> None:
        self.queue = deque(j for j in self.queue if j.task.worker != worker)
        self.gen[worker] += 1

    def copy(self, src: int, dst: int) -> None:
        self.gen[dst] += 1
        self._point(dst, self.refs[src])

    def get_state(self, worker: int) -> Any:
        return self.get(self.refs[worker])

    def set_state(self, worker: int, state: Any) -> None:
        self.gen[worker] += 1
        self._point(worker, self.put(state))

    def test(self, worker: int) -> float | None:
        """On an idle slot; one test may take ``task_timeout`` (it is one evaluation, less
        than a task). A lost or timed-out slot is restarted and the test retried, at most
        ``max_retries`` times; then the test score is missing (None), and the faults say why
        (:meth:`take_faults`)."""
        if not self.has_test:
            return None
        for attempt in range(1, self.max_retries + 2):
            slot = self._idle_slot()
            out = self.run_test(slot, self.refs[worker], self.task_timeout)
            if not isinstance(out, Dead):
                return out
            gave_up = attempt > self.max_retries
            self._lost_outside_task(slot, out, worker, "test", attempt, gave_up)
        return None

    def replay(
        self, spec: TrainableSpec, seed: int, schedule: Sequence[dict[str, Any]], chunk: int
    ) -> dict[str, float | None]:
        """On a worker (its device, its node), not in the controller; a lost worker retries.

        With ``task_timeout``, the replay may take it once per ``chunk``-step training call
        it makes, plus once for its evaluation: past that its slot is killed and the replay
        retried (``max_retries``), then it fails loudly."""
        limit = replay_limit(self.task_timeout, schedule, chunk)
        dead = Dead("")
        for attempt in range(1, self.max_retries + 2):
            slot = self._idle_slot()
            out = self.run_replay(slot, seed, schedule, chunk, limit)
            if not isinstance(out, Dead):
                return out
            dead = out
            gave_up = attempt > self.max_retries
            self._lost_outside_task(slot, dead, None, "replay", attempt, gave_up, limit)
        # ExecutorError: the CLI says it in one line (the faults are journalled by the loop)
        if dead.reason == "timeout":
            raise ExecutorError(
                f"replay: ran over its time limit ({limit:g} s: task_timeout = "
                f"{self.task_timeout:g} s per training call and for the evaluation) "
                f"{_times(self.max_retries + 1)}; gave up"
            )
        raise ExecutorError(f"replay: the worker running it died {_times(self.max_retries + 1)}")

    def _lost_outside_task(
        self,
        slot: int,
        dead: Dead,
        worker: int | None,
        during: str,
        attempt: int,
        gave_up: bool,
        limit: float | None = None,
    ) -> None:
        """A slot died or timed out during a test or a replay: restart it and record the
        fault (``during``, the attempt, and whether it is retried or given up)."""
        fault = {"slot": slot, "worker": worker, **self._restart(slot, dead, limit)}
        fault.update(during=during, attempt=attempt, action="failed" if gave_up else "retry")
        self.faults.append(fault)

    def take_faults(self) -> list[dict[str, Any]]:
        faults, self.faults = self.faults, []
        return faults

    def wait(self, *, every: bool) -> list[TaskResult]:
        out = [self._settle(r, job, ref) for r, job, ref in self._parked]
        self._parked = []
        while (self.queue or self.running) and (every or not out):
            self._dispatch_free()
            for slot, outcome in self._poll():
                result = self._finish(slot, outcome)
                if result is not None:
                    out.append(result)
        self._dispatch_free()
        if out and self.faults:
            out[0] = _with_faults(out[0], self.faults)
            self.faults = []
        return out

    # -- scheduling ------------------------------------------------------------------

    def _busy_workers(self) -> set[int]:
        return {
            j.task.worker
            for jobs in self.running.values()
            for j in jobs
            if j.gen == self.gen[j.task.worker]
        }

    def _dispatch_free(self) -> None:
        """A free slot takes the oldest queued task whose worker is not already training."""
        free = [
            s
            for d in range(self.depth)
            for s in range(self.n_slots)
            if len(self.running.get(s, ())) <= d and s not in self.down
        ]  # idle slots first, then slots with room in their pipeline
        if not free or not self.queue:
            return
        busy = self._busy_workers()
        kept: deque[Job] = deque()
        while self.queue:
            job = self.queue.popleft()
            w = job.task.worker
            if not free or w in busy:
                kept.append(job)
                continue
            slot = free.pop(0)
            job.ref_in = self._hold(self.refs[w])
            self.running.setdefault(slot, deque()).append(job)
            if len(self.running[slot]) == 1:
                self.since[slot] = time.monotonic()
            busy.add(w)
            self.dispatch(slot, job)
        self.queue = kept

    def _idle_slot(self) -> int:
        while True:
            for s in range(self.n_slots):
                if s not in self.running and s not in self.down:
                    return s
            for slot, outcome in self._poll():
                if isinstance(outcome, Dead):
                    result = self._finish(slot, outcome)
                    if result is not None:
                        self._parked.append((result, _NO_JOB, None))
                    continue
                result, ref_out, job = outcome
                self._retire(slot, job)
                self._parked.append((result, job, ref_out))

    def _finish(
        self, slot: int, outcome: tuple[TaskResult, Ref | None, Job] | Dead
    ) -> TaskResult | None:
        if isinstance(outcome, Dead):
            jobs = self.running.pop(slot, deque())
            self.since.pop(slot, None)
            for waiting in reversed(list(jobs)[1:]):  # sent ahead, never started: no attempt
                self._release(waiting.ref_in)
                waiting.ref_in = None
                self.queue.appendleft(waiting)
            return self._respawn(slot, jobs[0] if jobs else None, outcome)
        result, ref_out, job = outcome
        self._retire(slot, job)
        return self._settle(result, job, ref_out)

    def _poll(self) -> list[tuple[int, tuple[TaskResult, Ref | None, Job] | Dead]]:
        """``poll(block=True)``, killing the slots whose running task overran the timeout."""
        limit = self.task_timeout
        while True:
            if limit is None or not self.since:
                return self.poll(block=True)
            now = time.monotonic()
            over = [s for s, t in self.since.items() if now - t >= limit]
            if over:
                for s in over:
                    self.kill(s)
                return [(s, Dead("timeout")) for s in over]
            left = min(limit - (now - t) for t in self.since.values())
            got = self.poll(block=True, timeout=max(left, 0.0))
            if got:
                return got

    def _retire(self, slot: int, job: Job) -> None:
        """``job`` finished: its slot has room again."""
        jobs = self.running[slot]
        i = next(i for i, j in enumerate(jobs) if j is job)
        del jobs[i]
        if not jobs:
            del self.running[slot]
            self.since.pop(slot, None)
        elif i == 0:  # the next job sent ahead starts now
            self.since[slot] = time.monotonic()
        self._release(job.ref_in)
        job.ref_in = None

    def _settle(self, result: TaskResult, job: Job, ref_out: Ref | None) -> TaskResult:
        """The state a finished job produced becomes its worker's, unless it is stale."""
        if ref_out is not None and job is not _NO_JOB and job.gen == self.gen[job.task.worker]:
            self._point(job.task.worker, ref_out)
        elif ref_out is not None:
            self.drop(ref_out)
        return result

    def _restart(self, slot: int, dead: Dead, limit: float | None = None) -> dict[str, Any]:
        """Start a new process or actor for a dead slot; the fault's first fields (the
        slot, why it died, and the time limit it overran: ``limit``, or ``task_timeout``)."""
        self.launch(slot)
        fault: dict[str, Any] = {"slot": slot, "reason": dead.reason}
        if dead.reason == "timeout":
            fault["timeout_s"] = self.task_timeout if limit is None else limit
        return fault

    def _respawn(self, slot: int, job: Job | None, dead: Dead) -> TaskResult | None:
        """Restart a dead slot; re-run its task from the worker's last good state."""
        fault = self._restart(slot, dead)
        if job is None:
            self.faults.append({**fault, "worker": None, "action": "respawn"})
            return None
        self._release(job.ref_in)
        job.ref_in = None
        w = job.task.worker
        job.attempts += 1
        fault.update(worker=w, token=job.task.token, attempt=job.attempts)
        t = job.task
        if job.gen != self.gen[w]:  # a stale result: the loop journals its fault, drops it
            self.faults.append({**fault, "action": "dropped (stale)"})
            return TaskResult(t.worker, t.token, t.steps, t.hparams, math.nan, dead.reason)
        if job.attempts <= self.max_retries:
            self.faults.append({**fault, "action": "retry"})
            self.queue.appendleft(job)
            return None
        self.faults.append({**fault, "action": "failed"})
        if dead.reason == "timeout":
            error = f"the task ran over task_timeout = {self.task_timeout:g} s {job.attempts} times; gave up"
        else:
            error = f"worker died {job.attempts} times ({dead.reason}); gave up"
        return TaskResult(t.worker, t.token, t.steps, t.hparams, math.nan, error)


_NO_JOB = Job(Task(-1, -1, 0, {}), -1)  # a parked result that carries no state


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _with_faults(result: TaskResult, faults: list[dict[str, Any]]) -> TaskResult:
    return replace(result, faults=(*result.faults, *faults))
