"""The Ray executor: one Ray core actor per slot, states in the object store.

For users who outgrow one machine. Each actor imports the trainable's class once, builds
one trainable and reuses it (``load_state_dict`` only when the state it is asked to run
is not the one it holds). A task's resulting state is returned into the object store
(``num_returns=2``), so the controller keeps only object references: a copy between
workers moves no bytes, and the state travels straight from the store to the next actor.
The controller process never deserialises a state except for a checkpoint or
``get_state``.

**Node loss.** Every state the pool points at also has a copy in the object store of the
controller's node (``ray.wait(fetch_local=True)`` before a result is accepted; the store
memory of that node, not the controller process). When a worker node dies, its actors'
tasks fail once Ray declares the node dead (its GCS health check: by default a node is
dead after 5 missed checks 3 s apart, about 15-30 s; ``RAY_health_check_period_ms`` and
``RAY_health_check_failure_threshold`` on the head tune it). Each lost task is journalled
as a ``fault`` and re-run from its worker's last state on the actors that are left; the
lost slot's replacement actor waits for room on the cluster without blocking the run and
takes work again once placed (on a surviving node with free CPUs, or on a node that joins
later). If no slot is left and none can be placed within ``node_wait_s``, the run stops
with :class:`~firepbt.core.errors.ExecutorError`; its last checkpoint resumes it.

**Code shipping.** With a ``runtime_env`` (``[ray] working_dir`` / ``[ray] runtime_env``)
the actors import the trainable from what Ray ships to their nodes, not from the
controller's ``sys.path``. ``ray`` is imported here only: it is an optional extra.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import ray
from ray.exceptions import (
    GetTimeoutError,
    RayError,
    RayTaskError,
    RuntimeEnvSetupError,
)

from firepbt.core.errors import ConfigError, ExecutorError, UserCodeError
from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import TaskResult
from firepbt.executors.pool import Dead, Job, Ref, SlotPool
from firepbt.executors.ray_cluster import (  # noqa: F401  (re-exported)
    _cause,
    _resources,
    _Slot,
    _StateLost,
    check_address,
    init_local_ray,
    slots_that_fit,
)

START_TIMEOUT_S = 120.0  # the first actors: the cluster has room but may be busy
NODE_WAIT_S = 120.0  # every slot lost: how long to wait for room before stopping the run
RESPAWN_TRIES = 5  # a replacement whose own start fails this often in a row stays down


class RayExecutor(SlotPool):
    """``slots`` Ray actors, each reserving ``cpus`` CPUs and ``gpus`` GPUs (may be < 1)."""

    depth = 2  # an actor queues its next task while it trains

    def __init__(
        self,
        slots: int | None = None,
        *,
        address: str | None = None,
        cpus: float = 1.0,
        gpus: float = 0.0,
        max_retries: int = 3,
        task_timeout: float | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        node_wait_s: float = NODE_WAIT_S,
    ) -> None:
        super().__init__(
            slots or os.cpu_count() or 1, max_retries=max_retries, task_timeout=task_timeout
        )
        self.address = address
        self.cpus, self.gpus = cpus, gpus
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.node_wait_s = node_wait_s
        self.actors: dict[int, Any] = {}
        self.where: dict[int, str] = {}  # slot -> the node id its actor runs on
        self.booting: dict[Any, int] = {}  # ready() of a replacement actor -> its slot
        self.boot_fails: dict[int, int] = {}
        self.pending: dict[Any, tuple[int, Ref, Any, Job]] = {}  # state -> slot, ref, res, job
        self.keys = itertools.count()
        self.owns_ray = False
        self.spec: TrainableSpec | None = None

    def start(self, spec: TrainableSpec, seeds: Any) -> None:
        self.spec = spec
        address = self.address or os.environ.get("RAY_ADDRESS")  # set inside a Ray job
        if address:
            check_address(address)
        # a runtime_env goes to ray.init: Ray uploads local directories (working_dir,
        # py_modules) only for a whole job; every actor of the job then gets them
        job: dict[str, Any] = {"runtime_env": self.runtime_env} if self.runtime_env else {}
        if ray.is_initialized():
            if self.runtime_env:
                raise ConfigError(
                    "ray.runtime_env: Ray is already initialised in this process; pass the "
                    "runtime_env to ray.init instead (or launch with `ray job submit`)"
                )
        else:
            try:
                if address:
                    ray.init(address=address, log_to_driver=False, **job)
                else:
                    need = math.ceil(min(self.n_slots, len(seeds)) * self.cpus)
                    init_local_ray(max(os.cpu_count() or 1, need), **job)
            except Exception as exc:
                field = "ray.runtime_env" if self.runtime_env else "executor"
                raise ConfigError(
                    f"{field}: could not start Ray ({type(exc).__name__}: {_cause(exc)})"
                ) from None
            self.owns_ray = True
        n = max(1, min(self.n_slots, len(seeds)))
        fit = slots_that_fit(ray.nodes(), self.cpus, self.gpus)
        if fit < n:
            raise ConfigError(
                f"slots: {n} slots of {self.cpus:g} CPU and {self.gpus:g} GPU each (ray.cpus, "
                f"ray.gpus) do not fit the Ray cluster's nodes, which hold {fit} at most "
                f"({_resources()})"
            )
        self.remote_slot = ray.remote(_Slot)
        super().start(spec, seeds)

    def _actor(self) -> Any:
        assert self.spec is not None
        options: dict[str, Any] = dict(
            num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0, max_concurrency=1
        )
        if self.runtime_env and self.spec.cls is None:
            # the code comes from what Ray ships (the job's runtime_env), not from paths
            # that exist on the controller's machine only
            spec, path = TrainableSpec(self.spec.path, self.spec.args), []
        else:
            spec, path = self.spec, list(sys.path)
        return self.remote_slot.options(**options).remote(spec, path)

    def launch_all(self) -> None:
        for slot in range(self.n_slots):
            self.actors[slot] = self._actor()
        deadline = time.monotonic() + START_TIMEOUT_S
        for slot in range(self.n_slots):
            self._ready(slot, max(1.0, deadline - time.monotonic()))

    def launch(self, slot: int) -> None:
        """Replace a lost actor without waiting: it takes work once Ray has placed it."""
        for state in [r for r, (s, _, _, _) in self.pending.items() if s == slot]:
            del self.pending[state]  # the pool re-queues the jobs a dead actor held
        for ready in [r for r, s in self.booting.items() if s == slot]:
            del self.booting[ready]
        old = self.actors.pop(slot, None)
        if old is not None:
            ray.kill(old, no_restart=True)
        self.where.pop(slot, None)
        self.actors[slot] = self._actor()
        self.booting[self.actors[slot].ready.remote()] = slot
        self.down.add(slot)

    def _ready(self, slot: int, timeout: float) -> None:
        try:
            _pid, node = ray.get(self.actors[slot].ready.remote(), timeout=timeout)
            self.where[slot] = node
        except GetTimeoutError:
            raise ConfigError(
                f"executor: Ray actor {slot} did not start within {START_TIMEOUT_S:.0f} s: "
                f"the cluster has room for {self.n_slots} slots of {self.cpus:g} CPU and "
                f"{self.gpus:g} GPU but not free now ({_resources(available=True)} free)"
            ) from None
        except RuntimeEnvSetupError as exc:
            raise ConfigError(f"ray.runtime_env: Ray could not build it: {_cause(exc)}") from None
        except RayError as exc:
            raise ConfigError(
                f"trainable: Ray actor {slot} could not start: {_cause(exc)}"
            ) from None

    def pids(self) -> list[int]:
        """The worker actors' process ids (for monitoring; the fault tests kill them)."""
        return [ray.get(a.ready.remote())[0] for a in self.actors.values()]

    def nodes(self) -> dict[int, str]:
        """Slot -> the id of the Ray node its actor runs on (slots that are up)."""
        return dict(self.where)

    def build(self, assignments: dict[int, list[tuple[int, int]]]) -> dict[int, Ref]:
        refs: dict[int, Ref] = {}
        oks = []
        for slot, pairs in assignments.items():
            for w, seed in pairs:
                key = next(self.keys)
                ok, state = self.actors[slot].build.options(num_returns=2).remote(seed, key)
                refs[w] = Ref(key, state)
                oks.append(ok)
        try:
            ray.get(oks)
        except RayError as exc:
            if isinstance(exc, RayTaskError) and isinstance(exc.cause, ConfigError):
                raise ConfigError(str(exc.cause)) from None
            raise ConfigError(
                f"trainable: building a network in Ray failed: {_cause(exc)}"
            ) from None
        states = [r.handle for r in refs.values()]
        ray.wait(states, num_returns=len(states), fetch_local=True)  # a copy here (node loss)
        return refs

    def dispatch(self, slot: int, job: Job) -> None:
        assert job.ref_in is not None
        key = next(self.keys)
        res, state = (
            self.actors[slot]
            .run.options(num_returns=2)
            .remote(job.task, job.ref_in.key, [job.ref_in.handle], key)
        )
        self.pending[state] = (slot, Ref(key, state), res, job)

    def poll(
        self, block: bool, timeout: float | None = None
    ) -> list[tuple[int, tuple[TaskResult, Ref | None, Job] | Dead]]:
        # a task is done once its state is in this node's store too (fetch_local): a state
        # the pool accepts survives the loss of the node that produced it
        waiting = [*self.pending, *self.booting]
        wait_s: float | None = timeout if block else 0  # timeout: the pool's task_timeout
        idle = not self.pending and len(self.down) == self.n_slots
        if block and idle:
            wait_s = self.node_wait_s
        ready, rest = (
            ray.wait(waiting, num_returns=1, timeout=wait_s, fetch_local=True)
            if waiting
            else ([], [])  # every slot gave up restarting: nothing left to wait for
        )
        if not ready and block and idle:
            raise ExecutorError(
                f"executor: every Ray worker was lost and none could be placed again within "
                f"{self.node_wait_s:.0f} s (each slot needs {self.cpus:g} CPU and "
                f"{self.gpus:g} GPU; the cluster has {_resources(available=True)} free); "
                f"the run stopped at its last checkpoint: `firepbt resume` it when nodes are back",
                self._take_faults(),
            )
        if rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0, fetch_local=True)
            ready += more
        out: list[tuple[int, tuple[TaskResult, Ref | None, Job] | Dead]] = []
        dead: set[int] = set()
        for obj in ready:
            if obj in self.booting:
                self._booted(self.booting.pop(obj), obj)
                continue
            if obj not in self.pending:
                continue  # its slot was replaced while we looked
            slot, ref, res, job = self.pending.pop(obj)
            if slot in dead:
                continue
            try:
                result, ok = ray.get(res)
            except RayError as exc:
                dead.add(slot)
                where = self.where.get(slot, "?")[:12]
                out.append((slot, Dead(f"Ray actor lost on node {where}: {type(exc).__name__}")))
                continue
            if result == "lost":
                raise ExecutorError(
                    f"executor: the state of worker {job.task.worker} was lost with the node "
                    f"that held it ({ok}); the run stopped at its last checkpoint: "
                    f"`firepbt resume` it",
                    self._take_faults(),
                )
            out.append((slot, (result, ref if ok else None, job)))
        return out

    def kill(self, slot: int) -> None:
        actor = self.actors.get(slot)
        if actor is not None:
            ray.kill(actor, no_restart=True)

    def _take_faults(self) -> list[dict[str, Any]]:
        faults, self.faults = self.faults, []
        return faults

    def _booted(self, slot: int, ready: Any) -> None:
        """A replacement actor answered (it is up) or failed (try again, a few times)."""
        try:
            _pid, node = ray.get(ready)
        except RayError as exc:
            fails = self.boot_fails.get(slot, 0) + 1
            self.boot_fails[slot] = fails
            self.faults.append(
                {
                    "slot": slot,
                    "reason": f"replacement lost: {type(exc).__name__}",
                    "worker": None,
                    "action": "respawn" if fails < RESPAWN_TRIES else "gave up",
                }
            )
            if fails < RESPAWN_TRIES:
                self.launch(slot)
            return
        self.boot_fails.pop(slot, None)
        self.where[slot] = node
        self.down.discard(slot)

    def run_test(self, slot: int, ref: Ref, timeout: float | None) -> float | Dead | None:
        try:
            value = ray.get(self.actors[slot].test.remote(ref.key, [ref.handle]), timeout=timeout)
        except GetTimeoutError:
            self.kill(slot)
            return Dead("timeout")
        except RayError as exc:
            return Dead(f"Ray actor lost: {type(exc).__name__}")
        if isinstance(value, UserCodeError):  # the user's test() raised
            raise value
        return None if value is None else float(value)

    def run_replay(
        self,
        slot: int,
        seed: int,
        schedule: Sequence[dict[str, Any]],
        chunk: int,
        timeout: float | None,
    ) -> dict[str, float | None] | Dead:
        call = self.actors[slot].replay.remote(seed, list(schedule), chunk)
        try:
            out: dict[str, float | None] | UserCodeError = ray.get(call, timeout=timeout)
        except GetTimeoutError:
            self.kill(slot)
            return Dead("timeout")
        except RayTaskError as exc:  # the user's code raised: not a lost worker
            raise RuntimeError(f"replay: in Ray actor {slot}: {_cause(exc)}") from None
        except RayError as exc:
            return Dead(f"Ray actor lost: {type(exc).__name__}")
        if isinstance(out, UserCodeError):  # the user's test() raised
            raise out
        return out

    def put(self, state: Any) -> Ref:
        return Ref(next(self.keys), ray.put(state))

    def get(self, ref: Ref) -> Any:
        return ray.get(ref.handle)

    def drop(self, ref: Ref) -> None:
        pass  # the object store frees an object once no reference to it is left

    def close(self) -> None:
        for actor in self.actors.values():
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # its node is gone
                pass
        self.actors.clear()
        self.pending.clear()
        self.booting.clear()
        self.refs = []
        self.queue.clear()
        self._parked = []
        self._counts.counts.clear()  # the states' object references: the store frees them
        self._counts.by_key.clear()
        if self.owns_ray and ray.is_initialized():
            ray.shutdown()
        self.owns_ray = False
