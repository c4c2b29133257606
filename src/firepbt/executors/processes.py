"""The process executor: one long-lived worker process per slot, on one machine.

Each slot process imports the trainable's class once, builds one trainable and reuses
it for whichever worker it runs next (``load_state_dict`` when the state it holds is not
the one asked for). States travel as pickle files in a private temporary directory
(``$TMPDIR``, default ``/tmp``): the slot that trained a network writes its state, the
slot that runs it next reads it, and the controller only passes file names, so a copy
between workers moves no bytes at all. Slots pinned to devices get
``CUDA_VISIBLE_DEVICES`` set before anything is imported, and the trainable receives
the device as it is seen inside its process (``device="cuda:0"``) if its ``__init__``
accepts a ``device`` argument.

The state directory (``firepbt-states-*``) is removed when the executor closes, also
after Ctrl-C or SIGTERM. A controller killed outright (SIGKILL) cannot remove it: each
directory holds a lock file that its controller keeps locked, and the next process
executor to start removes every such directory whose lock is free.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from firepbt.core.errors import ConfigError
from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import TaskResult
from firepbt.executors.pool import Dead, Job, Ref, SlotPool
from firepbt.executors.process_slot import (  # noqa: F401  (remove_stale_state_dirs: public)
    GUARD_HINT,
    GUARD_MESSAGE,
    OWNER_FILE,
    STATE_PREFIX,
    _accepts,
    _Died,
    _load,
    _lock,
    _main_is_script,
    _missing_device,
    _save,
    _visible,
    remove_stale_state_dirs,
    slot_main,
)

START_TIMEOUT_S = 120.0
RESPAWN_TRIES = 5


class ProcessExecutor(SlotPool):
    """``slots`` worker processes (spawned), optionally one per device."""

    depth = 2  # a slot holds its next task in its pipe while it trains

    def __init__(
        self,
        slots: int | None = None,
        *,
        devices: Sequence[str] = (),
        max_retries: int = 3,
        state_dir: str | Path | None = None,
        task_timeout: float | None = None,
    ) -> None:
        devices = tuple(devices)
        if slots is None:
            slots = len(devices) or os.cpu_count() or 1
        if devices and slots > len(devices):
            raise ConfigError(
                f"slots: {slots} slots but devices names {len(devices)}; at most one per device"
            )
        super().__init__(slots, max_retries=max_retries, task_timeout=task_timeout)
        self.devices = devices
        self.state_dir = state_dir
        self.ctx = mp.get_context("spawn")
        self.procs: dict[int, Any] = {}
        self.conns: dict[int, Connection] = {}
        self.outs: dict[int, deque[Ref]] = {}  # the state files each slot's jobs will write
        self.keys = itertools.count()
        self.dir: Path | None = None
        self.owner: Any = None  # the locked owner file of ``dir``
        self.spec: TrainableSpec | None = None

    def pids(self) -> list[int]:
        """The slot processes' ids (for monitoring; the fault tests kill them)."""
        return [p.pid for p in self.procs.values()]

    # -- transport ----------------------------------------------------------------------

    def start(self, spec: TrainableSpec, seeds: Sequence[int]) -> None:
        if getattr(mp.current_process(), "_inheriting", False):
            raise SystemExit(GUARD_MESSAGE)  # a worker importing a script without the guard
        self.spec = spec
        parent = str(self.state_dir) if self.state_dir else None
        remove_stale_state_dirs(parent)
        self.dir = Path(tempfile.mkdtemp(prefix=STATE_PREFIX, dir=parent))
        # lock first, then give the lock file its name: never an unlocked owner file
        part = self.dir / f"{OWNER_FILE}.part"
        self.owner = open(part, "wb")  # noqa: SIM115  (held until close)
        _lock(self.owner)
        os.replace(part, self.dir / OWNER_FILE)
        super().start(spec, seeds)

    def launch(self, slot: int) -> None:
        for attempt in range(RESPAWN_TRIES):  # a respawned process may itself be killed
            self._spawn(slot)
            try:
                self._request_reply(slot, "loading the trainable")
                return
            except _Died:
                if attempt == RESPAWN_TRIES - 1:
                    raise

    def launch_all(self) -> None:
        for slot in range(self.n_slots):
            self._spawn(slot)
        for slot in range(self.n_slots):
            self._request_reply(slot, "loading the trainable")

    def _spawn(self, slot: int) -> None:
        for ref in self.outs.pop(slot, ()):
            self._unlink(ref)
        old = self.procs.pop(slot, None)
        if old is not None:
            old.kill()
            old.join()
            self.conns.pop(slot).close()
        device = self.devices[slot] if self.devices else None
        ours, theirs = self.ctx.Pipe()
        proc = self.ctx.Process(
            target=slot_main, args=(theirs, device, list(sys.path)), daemon=True
        )
        proc.start()
        theirs.close()
        self.procs[slot], self.conns[slot] = proc, ours
        ours.send(("init", self.spec))

    def build(self, assignments: dict[int, list[tuple[int, int]]]) -> dict[int, Ref]:
        refs: dict[int, Ref] = {}
        plans: dict[int, list[tuple[int, str]]] = {}
        for slot, pairs in assignments.items():
            plans[slot] = []
            for w, seed in pairs:
                refs[w] = self._new_ref()
                plans[slot].append((seed, refs[w].handle))
        for slot in assignments:  # build in parallel, then collect
            self.conns[slot].send(("build", plans[slot]))
        for slot in assignments:
            self._request_reply(slot, "building the initial networks")
        return refs

    def _request_reply(self, slot: int, what: str) -> Any:
        """The answer of a slot that must not fail (start-up): ConfigError otherwise."""
        conn = self.conns[slot]
        try:
            if not conn.poll(START_TIMEOUT_S):
                raise ConfigError(f"executor: worker process {slot} did not answer while {what}")
            status, payload = conn.recv()
        except (EOFError, OSError):
            self.procs[slot].join(timeout=5)
            code = self.procs[slot].exitcode
            hint = GUARD_HINT if code == 1 and _main_is_script() else ""
            raise _Died(
                f"executor: worker process {slot} died while {what} (exit code {code}){hint}"
            ) from None
        if status == "config":
            raise ConfigError(payload)
        if status == "device":
            device = self.devices[slot] if self.devices else None
            raise ConfigError(f"devices: {device} is not a device on this machine: {payload}")
        if status != "ok":
            raise ConfigError(f"trainable: in worker process {slot}, {what} failed: {payload}")
        return payload

    def _new_ref(self) -> Ref:
        assert self.dir is not None
        key = next(self.keys)
        return Ref(key, str(self.dir / f"{key}.pkl"))

    def dispatch(self, slot: int, job: Job) -> None:
        assert job.ref_in is not None
        out = self._new_ref()
        self.outs.setdefault(slot, deque()).append(out)
        try:
            self.conns[slot].send(("run", job.task, job.ref_in.handle, out.handle))
        except (BrokenPipeError, OSError):
            pass  # the slot is dead: poll() sees its sentinel

    def poll(
        self, block: bool, timeout: float | None = None
    ) -> list[tuple[int, tuple[TaskResult, Ref | None, Job] | Dead]]:
        by_conn = {self.conns[s]: s for s in self.running}
        by_sentinel = {p.sentinel: s for s, p in self.procs.items()}
        ready = wait([*by_conn, *by_sentinel], timeout=timeout if block else 0)
        out: list[tuple[int, tuple[TaskResult, Ref | None, Job] | Dead]] = []
        seen: set[int] = set()
        for obj in ready:
            slot = by_conn.get(obj)  # type: ignore[call-overload]
            if slot is None:
                slot = by_sentinel[obj]  # type: ignore[index]
            if slot in seen:
                continue
            seen.add(slot)
            conn = self.conns[slot]
            jobs = list(self.running.get(slot, ()))
            k = 0  # replies come in the order the slot's jobs were sent
            try:
                while k < len(jobs) and conn.poll():
                    status, payload = conn.recv()
                    ref = self.outs[slot].popleft()
                    if status == "ok":
                        out.append((slot, (payload, ref, jobs[k])))
                    else:  # loading or saving the state failed: lost, as if diverged
                        t = jobs[k].task
                        nan = float("nan")
                        fail = TaskResult(t.worker, t.token, t.steps, t.hparams, nan, payload)
                        self._unlink(ref)
                        out.append((slot, (fail, None, jobs[k])))
                    k += 1
            except (EOFError, OSError):
                pass
            if not self.procs[slot].is_alive():
                proc = self.procs[slot]
                proc.join(timeout=5)
                out.append((slot, Dead(f"exit code {proc.exitcode}")))
        return out

    def kill(self, slot: int) -> None:
        proc = self.procs.get(slot)
        if proc is not None:
            proc.kill()
            proc.join()

    def _ask(self, slot: int, message: tuple[Any, ...], timeout: float | None) -> Any:
        """Send ``message`` (a test or a replay) to an idle slot and return the payload
        of its ``("ok", payload)`` answer; ``Dead`` if its process died, or (the slot
        killed) if no answer came in ``timeout``. The user's test() raising is re-raised
        here (UserCodeError); any other failure is a RuntimeError naming the request."""
        conn = self.conns[slot]
        try:
            conn.send(message)
            if timeout is not None and not conn.poll(timeout):
                self.kill(slot)
                return Dead("timeout")
            status, payload = conn.recv()
        except (EOFError, OSError):
            self.procs[slot].join(timeout=5)
            return Dead(f"exit code {self.procs[slot].exitcode}")
        if status == "user":  # the user's test() raised
            raise payload
        if status != "ok":
            raise RuntimeError(f"{message[0]}: in worker process {slot}: {payload}")
        return payload

    def run_test(self, slot: int, ref: Ref, timeout: float | None) -> float | Dead | None:
        payload = self._ask(slot, ("test", ref.handle), timeout)
        if isinstance(payload, Dead):
            return payload
        return None if payload is None else float(payload)

    def run_replay(
        self,
        slot: int,
        seed: int,
        schedule: Sequence[dict[str, Any]],
        chunk: int,
        timeout: float | None,
    ) -> dict[str, float | None] | Dead:
        out: dict[str, float | None] | Dead = self._ask(
            slot, ("replay", seed, list(schedule), chunk), timeout
        )
        return out

    def put(self, state: Any) -> Ref:
        ref = self._new_ref()
        _save(state, ref.handle)
        return ref

    def get(self, ref: Ref) -> Any:
        return _load(ref.handle)

    def drop(self, ref: Ref) -> None:
        self._unlink(ref)

    @staticmethod
    def _unlink(ref: Ref) -> None:
        try:
            os.unlink(ref.handle)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        for slot in self.procs:
            try:
                self.conns[slot].send(("stop",))
            except (BrokenPipeError, OSError):
                pass
        for slot, proc in self.procs.items():
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
                proc.join()
            self.conns[slot].close()
        self.procs.clear()
        self.conns.clear()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if self.owner is not None:
            self.owner.close()
            self.owner = None
