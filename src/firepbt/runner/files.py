"""Durable files of a run directory: atomic writes, fsync, the run lock and ``run.json``.

Every file firepbt writes that must survive a crash goes through :func:`atomic_write`
(temporary name, fsync, rename, fsync of the directory); ``FIREPBT_FSYNC=0`` skips the
fsyncs (tests, throwaway runs). Used by the checkpoints (:mod:`firepbt.runner.checkpoint`),
the result and the loggers' state files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any

from firepbt.core.errors import ConfigError

RUN_FILE = "run.json"  # what the run is: format, version, config (read by ``resume``)
# bump when the manifest, the blobs or the loop's state change shape; 3: the config's
# best rule, whose default is "final" (a run of format 2 used "highest" and has no key)
FORMAT = 3


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_enabled() -> bool:
    """``FIREPBT_FSYNC=0`` skips fsync (tests, throwaway runs): a killed process still
    loses nothing, since renames and flushed writes survive it; only a machine crash could.
    """
    return os.environ.get("FIREPBT_FSYNC", "1") != "0"


def fsync_dir(path: Path) -> None:
    if not fsync_enabled():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Write, fsync, rename, fsync the directory: ``path`` is old or new, never torn.

    ``sync_dir=False`` leaves the directory's fsync to the caller (one for many files).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        if fsync_enabled():
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)


def write_run_info(run_dir: Path, config: Any) -> None:
    from firepbt._version import __version__

    info = {
        "format": FORMAT,
        "firepbt_version": __version__,
        "config": config.to_dict(),
        "search_path": config.search_path,
    }
    atomic_write(run_dir / RUN_FILE, (json.dumps(info, indent=2) + "\n").encode())


def lock_run(run_dir: Path) -> IO[bytes] | None:
    """Hold an exclusive lock on ``run.json`` while a controller drives the run, so that a
    second ``firepbt resume`` of a live run is refused (None where flock is unavailable).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover  (not POSIX)
        return None
    fh = open(run_dir / RUN_FILE, "rb")  # noqa: SIM115  (held for the run's lifetime)
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise ConfigError(
            f"{run_dir}: another firepbt process is running this run; wait for it or stop it"
        ) from None
    return fh


def config_digest(config: dict[str, Any]) -> str:
    return sha256(json.dumps(config, sort_keys=True).encode())
