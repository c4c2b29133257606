"""The Ray executor: one Ray core actor per slot, states in the object store.

For users who outgrow one machine. Each actor imports the trainable's class once, builds
one trainable and reuses it (``load_state_dict`` only when the state it is asked to run
is not the one it holds). A task's resulting state is returned into the object store
(``num_returns=2``), so the controller keeps only object references: a copy between
workers moves no bytes, and the state travels straight from the store to the next actor.
A lost actor is replaced and its task re-run from the worker's last reference (see
:mod:`firepbt.executors.pool`). ``ray`` is imported here only: it is an optional extra.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import sys
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from firepbt.core.errors import ConfigError
from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import TaskResult, run_task
from firepbt.executors.pool import Dead, Job, Ref, SlotPool

START_TIMEOUT_S = 120.0
RESPAWN_TRIES = 5


class _Slot:
    """The actor: one trainable, reused."""

    def __init__(self, spec: TrainableSpec, sys_path: list[str]) -> None:
        for p in reversed(sys_path):
            if p not in sys.path:
                sys.path.insert(0, p)
        self.spec = spec
        self.cls = spec.resolve()
        self.net: Any = None
        self.held: int | None = None

    def ready(self) -> int:
        return os.getpid()

    def build(self, seed: int, key: int) -> tuple[bool, Any]:
        self.net = self.cls(seed=seed, **dict(self.spec.args))
        self.held = key
        return True, self.net.state_dict()

    def _load(self, key: int, box: list[Any]) -> None:
        if self.net is None:
            self.net = self.cls(seed=0, **dict(self.spec.args))
        if self.held != key:
            self.held = None
            self.net.load_state_dict(ray.get(box[0]))
            self.held = key

    def run(self, task: Any, key_in: int, box: list[Any], key_out: int) -> tuple[Any, Any]:
        try:
            self._load(key_in, box)
        except Exception as exc:  # the state could not be loaded: as diverged, no new state
            t = task
            result = TaskResult(t.worker, t.token, t.steps, t.hparams, math.nan, repr(exc))
            return (result, False), None
        result = run_task(self.net, task)
        self.held = key_out
        return (result, True), self.net.state_dict()

    def test(self, key: int, box: list[Any]) -> float | None:
        try:
            self._load(key, box)
            return float(self.net.test())
        except Exception:
            return None


def check_address(address: str) -> None:
    """An unreachable cluster is a config error, found before anything starts."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"ray.address: expected 'host:port' or 'ray://host:port', got {address!r}"
        )
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"ray.address: cannot reach Ray at {address} ({exc})") from None


class RayExecutor(SlotPool):
    """``slots`` Ray actors, each reserving ``cpus`` CPUs and ``gpus`` GPUs."""

    depth = 2  # an actor queues its next task while it trains

    def __init__(
        self,
        slots: int | None = None,
        *,
        address: str | None = None,
        cpus: float = 1.0,
        gpus: float = 0.0,
        max_retries: int = 3,
    ) -> None:
        super().__init__(slots or os.cpu_count() or 1, max_retries=max_retries)
        self.address = address
        self.cpus, self.gpus = cpus, gpus
        self.actors: dict[int, Any] = {}
        self.pending: dict[Any, tuple[int, Ref, Job]] = {}
        self.keys = itertools.count()
        self.owns_ray = False
        self.spec: TrainableSpec | None = None

    def start(self, spec: TrainableSpec, seeds: Any) -> None:
        self.spec = spec
        if self.address:
            check_address(self.address)
        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False)
                else:
                    need = math.ceil(min(self.n_slots, len(seeds)) * self.cpus)
                    ray.init(
                        address="local",
                        num_cpus=max(os.cpu_count() or 1, need),
                        include_dashboard=False,
                        log_to_driver=False,
                        _node_ip_address="127.0.0.1",
                    )
            except Exception as exc:
                raise ConfigError(
                    f"executor: could not start Ray ({type(exc).__name__}: {exc})"
                ) from None
            self.owns_ray = True
        self.remote_slot = ray.remote(_Slot)
        super().start(spec, seeds)

    def _actor(self, slot: int) -> Any:
        return self.remote_slot.options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0, max_concurrency=1
        ).remote(self.spec, list(sys.path))

    def launch_all(self) -> None:
        for slot in range(self.n_slots):
            self.actors[slot] = self._actor(slot)
        for slot in range(self.n_slots):
            self._ready(slot)

    def launch(self, slot: int) -> None:
        """Replace a lost actor (the trainable imported before: retry a replacement lost too)."""
        for res in [r for r, (s, _, _) in self.pending.items() if s == slot]:
            del self.pending[res]  # the pool re-queues the jobs a dead actor held
        for attempt in range(RESPAWN_TRIES):
            old = self.actors.pop(slot, None)
            if old is not None:
                ray.kill(old, no_restart=True)
            self.actors[slot] = self._actor(slot)
            try:
                self._ready(slot)
                return
            except ConfigError:
                if attempt == RESPAWN_TRIES - 1:
                    raise

    def _ready(self, slot: int) -> None:
        try:
            ray.get(self.actors[slot].ready.remote(), timeout=START_TIMEOUT_S)
        except GetTimeoutError:
            raise ConfigError(
                f"executor: Ray actor {slot} did not start within {START_TIMEOUT_S:.0f} s "
                f"(does the cluster have {self.cpus} CPU and {self.gpus} GPU per slot free?)"
            ) from None
        except RayError as exc:
            raise ConfigError(
                f"trainable: Ray actor {slot} could not start: {_cause(exc)}"
            ) from None

    def pids(self) -> list[int]:
        """The worker actors' process ids (for monitoring; the fault tests kill them)."""
        return [ray.get(a.ready.remote()) for a in self.actors.values()]

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
            raise ConfigError(
                f"trainable: building a network in Ray failed: {_cause(exc)}"
            ) from None
        return refs

    def dispatch(self, slot: int, job: Job) -> None:
        assert job.ref_in is not None
        key = next(self.keys)
        res, state = (
            self.actors[slot]
            .run.options(num_returns=2)
            .remote(job.task, job.ref_in.key, [job.ref_in.handle], key)
        )
        self.pending[res] = (slot, Ref(key, state), job)

    def poll(self, block: bool) -> list[tuple[int, tuple[TaskResult, Ref | None, Job] | Dead]]:
        waiting = list(self.pending)
        ready, rest = ray.wait(waiting, num_returns=1, timeout=None if block else 0)
        if rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        out: list[tuple[int, tuple[TaskResult, Ref | None, Job] | Dead]] = []
        dead: set[int] = set()
        for res in ready:
            slot, ref, job = self.pending.pop(res)
            if slot in dead:
                continue
            try:
                result, ok = ray.get(res)
            except (RayActorError, RayError) as exc:
                dead.add(slot)
                out.append((slot, Dead(f"Ray actor lost: {type(exc).__name__}")))
                continue
            out.append((slot, (result, ref if ok else None, job)))
        return out

    def run_test(self, slot: int, ref: Ref) -> float | Dead | None:
        try:
            value = ray.get(self.actors[slot].test.remote(ref.key, [ref.handle]))
        except RayError as exc:
            return Dead(f"Ray actor lost: {type(exc).__name__}")
        return None if value is None else float(value)

    def put(self, state: Any) -> Ref:
        return Ref(next(self.keys), ray.put(state))

    def get(self, ref: Ref) -> Any:
        return ray.get(ref.handle)

    def drop(self, ref: Ref) -> None:
        pass  # the object store frees an object once no reference to it is left

    def close(self) -> None:
        for actor in self.actors.values():
            ray.kill(actor, no_restart=True)
        self.actors.clear()
        self.pending.clear()
        self.refs = []
        if self.owns_ray and ray.is_initialized():
            ray.shutdown()
        self.owns_ray = False


def _cause(exc: BaseException) -> str:
    """The user's error inside a Ray exception, on one line."""
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        exc = exc.cause
    text = str(exc).strip().splitlines()
    errors = [line for line in text if "Error" in line]
    return (errors[-1] if errors else text[-1] if text else type(exc).__name__).strip()
