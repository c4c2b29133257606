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

import inspect
import itertools
import multiprocessing as mp
import os
import pickle
import shutil
import sys
import tempfile
import traceback
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from firepbt.core.errors import ConfigError
from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import TaskResult, replay_on, run_task
from firepbt.executors.pool import Dead, Job, Ref, SlotPool

START_TIMEOUT_S = 120.0
RESPAWN_TRIES = 5
STATE_PREFIX = "firepbt-states-"
OWNER_FILE = ".owner"  # locked by the controller while the directory is in use
GUARD_MESSAGE = (
    "firepbt: error: firepbt.run() was called while a worker process was importing your "
    "script. The process executor starts its workers by importing the main module, so "
    'the code that starts the run must sit under `if __name__ == "__main__":`.'
)
GUARD_HINT = (
    ' (if your script calls firepbt.run() outside `if __name__ == "__main__":`, add that '
    "guard: the worker processes import the script)"
)


def _lock(fh: Any) -> bool:
    """An exclusive, non-blocking lock on ``fh`` (True where locks are unsupported)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover  (not POSIX)
        return True
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def remove_stale_state_dirs(parent: str | Path | None = None) -> list[Path]:
    """Remove the state directories of controllers that died without cleaning up (their
    owner lock is free); returns them. Directories without an owner file are left alone."""
    root = Path(parent) if parent else Path(tempfile.gettempdir())
    removed = []
    for d in root.glob(f"{STATE_PREFIX}*"):
        try:
            if not d.is_dir() or d.stat().st_uid != os.getuid():
                continue
            fh = open(d / OWNER_FILE, "rb")  # noqa: SIM115
        except OSError:
            continue
        try:
            if _lock(fh):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
        finally:
            fh.close()
    return removed


def _main_is_script() -> bool:
    main = sys.modules.get("__main__")
    return bool(getattr(main, "__file__", None)) and getattr(main, "__spec__", None) is None


class _Died(ConfigError):
    """A slot process died while starting."""


def _save(state: Any, path: str) -> None:
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def _load(path: str) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def _visible(device: str | None) -> tuple[str | None, dict[str, str]]:
    """The device name inside the slot's process, and the environment that pins it."""
    if device and device.startswith("cuda:"):
        return "cuda:0", {"CUDA_VISIBLE_DEVICES": device.split(":", 1)[1]}
    return device, {}


def slot_main(conn: Connection, device: str | None, sys_path: list[str]) -> None:
    """A slot process: answers ("init" | "build" | "run" | "test" | "stop", ...) messages."""
    local_device, env = _visible(device)
    os.environ.update(env)  # before the trainable (and torch) are imported
    for p in reversed(sys_path):
        if p not in sys.path:
            sys.path.insert(0, p)
    spec: TrainableSpec | None = None
    kwargs: dict[str, Any] = {}
    net: Any = None
    held: str | None = None  # the state file ``net`` currently holds
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        op = msg[0]
        try:
            if op == "stop":
                return
            if op == "init":
                spec = msg[1]
                cls = spec.resolve()
                kwargs = dict(spec.args)
                if local_device is not None and _accepts(cls, "device"):
                    kwargs["device"] = local_device
                missing = _missing_device(device)
                if missing:
                    conn.send(("device", missing))
                    continue
                conn.send(("ok", None))
            elif op == "build":
                assert spec is not None
                for seed, path in msg[1]:
                    net = spec.resolve()(seed=seed, **kwargs)
                    spec.check(net)
                    _save(net.state_dict(), path)
                    held = path
                conn.send(("ok", None))
            elif op == "run":
                task, path_in, path_out = msg[1], msg[2], msg[3]
                if net is None:
                    assert spec is not None
                    net = spec.resolve()(seed=0, **kwargs)
                if held != path_in:
                    held = None
                    net.load_state_dict(_load(path_in))
                    held = path_in
                result = run_task(net, task)
                held = None
                _save(net.state_dict(), path_out)
                held = path_out
                conn.send(("ok", result))
            elif op == "replay":  # a fresh network, beside the one this slot holds
                assert spec is not None
                seed, schedule, chunk = msg[1], msg[2], msg[3]
                conn.send(("ok", replay_on(spec.resolve()(seed=seed, **kwargs), schedule, chunk)))
            elif op == "test":
                path_in = msg[1]
                if held != path_in:
                    held = None
                    net.load_state_dict(_load(path_in))
                    held = path_in
                conn.send(("ok", float(net.test())))
        except ConfigError as exc:  # the user's config (hyperparameters the trainable does not use)
            conn.send(("config", str(exc)))
        except Exception as exc:
            conn.send(("err", "".join(traceback.format_exception_only(type(exc), exc)).strip()))


def _missing_device(device: str | None) -> str | None:
    """Why a CUDA ``device`` does not exist here, if the trainable's torch can tell.

    firepbt does not import torch; if the trainable did, its CUDA device count (with this
    slot's ``CUDA_VISIBLE_DEVICES``) says whether the slot's GPU exists.
    """
    torch = sys.modules.get("torch")
    if not device or not device.startswith("cuda") or torch is None:
        return None
    try:
        count = int(torch.cuda.device_count())
    except Exception as exc:  # a torch without CUDA support
        return f"torch cannot use CUDA ({type(exc).__name__}: {exc})"
    if count == 0:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        return f"torch sees no CUDA device (CUDA_VISIBLE_DEVICES={visible})"
    return None


def _accepts(cls: type, name: str) -> bool:
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


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

    def run_test(self, slot: int, ref: Ref) -> float | Dead | None:
        conn = self.conns[slot]
        try:
            conn.send(("test", ref.handle))
            status, payload = conn.recv()
        except (EOFError, OSError):
            self.procs[slot].join(timeout=5)
            return Dead(f"exit code {self.procs[slot].exitcode}")
        return float(payload) if status == "ok" else None

    def run_replay(
        self, slot: int, seed: int, schedule: Sequence[dict[str, Any]], chunk: int
    ) -> dict[str, float | None] | Dead:
        conn = self.conns[slot]
        try:
            conn.send(("replay", seed, list(schedule), chunk))
            status, payload = conn.recv()
        except (EOFError, OSError):
            self.procs[slot].join(timeout=5)
            return Dead(f"exit code {self.procs[slot].exitcode}")
        if status != "ok":
            raise RuntimeError(f"replay: in worker process {slot}: {payload}")
        out: dict[str, float | None] = payload
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
