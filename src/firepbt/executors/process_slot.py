"""The slot side of the process executor: what runs inside each worker process.

:func:`slot_main` imports the trainable's class once, builds trainables and answers the
controller's requests (run a task, test, replay) over a pipe, reading and writing states
as pickle files in the run's private state directory; the directory's owner lock and the
clean-up of directories left by a killed controller live here too
(:mod:`firepbt.executors.processes` is the controller side).
"""

from __future__ import annotations

import inspect
import os
import pickle
import shutil
import sys
import tempfile
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from firepbt.core.errors import ConfigError, UserCodeError
from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import replay_on, run_task, take_test

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
                if net is None:  # a slot restarted since its last task
                    assert spec is not None
                    net = spec.resolve()(seed=0, **kwargs)
                if held != path_in:
                    held = None
                    net.load_state_dict(_load(path_in))
                    held = path_in
                conn.send(("ok", take_test(net)))
        except UserCodeError as exc:  # test() raised: the controller stops the run
            conn.send(("user", exc))
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
