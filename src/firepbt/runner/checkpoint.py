"""Checkpoints of a run: atomic, checksummed, content-addressed, garbage-collected.

Layout under ``DIR/checkpoints/``::

    ckpt-000007.json     a manifest: {"sha256": <of body>, "body": {...}}
    blobs/<sha256>.pkl   pickled objects, named by the SHA-256 of their bytes

A checkpoint is taken at each ready point of the population (:mod:`firepbt.runner.loop`). Its
manifest names one blob for the loop's state (decider included) and one per worker for
the executor's state of that worker; a member whose weights did not change since the
last checkpoint points at the same blob, which is not written again. Every file is
written to a temporary name, fsynced, renamed into place and the directory fsynced, so a
kill leaves either the old file or the new one, never a torn one under the final name.
Every file is verified against its SHA-256 on load; a checkpoint with a bad or missing
file is never loaded, and the run falls back to the previous good one (whose files
hold every member's previous good state).

Pickle is used for the blobs because what they hold is plain data the process itself
made (the decider's workers and curves, a NumPy ``Generator``, the trainables'
``state_dict``, which may hold tensors), and pickle restores it exactly; it is only ever
read back from the run's own directory after its checksum matched. As with
``torch.load``, do not resume a run directory from a source you do not trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from firepbt.core.errors import ConfigError

CHECKPOINT_DIR = "checkpoints"
RUN_FILE = "run.json"  # what the run is: format, version, config (read by ``resume``)
FORMAT = 1  # bump when the manifest, the blobs or the loop's state change shape


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


@dataclass
class Loaded:
    """A verified checkpoint: its manifest body and unpickled blobs."""

    seq: int
    journal_bytes: int
    journal_sha256: str
    loop: dict[str, Any]
    states: list[Any]
    best_state: str | None


@dataclass
class Problem:
    """Why a checkpoint could not be loaded (journalled as ``checkpoint_corrupt``)."""

    seq: int
    file: str
    problem: str
    worker: int | None = None

    def event(self, fallback: int | None) -> dict[str, Any]:
        ev: dict[str, Any] = {"ev": "checkpoint_corrupt", "checkpoint": self.seq}
        ev.update(file=self.file, problem=self.problem)
        if self.worker is not None:
            ev["worker"] = self.worker
        ev["fallback"] = fallback
        return ev


class BadFile(Exception):
    pass


@dataclass
class CheckpointStore:
    """The checkpoints of one run directory."""

    run_dir: Path
    keep_best: bool = False
    _sizes: dict[str, int] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.run_dir / CHECKPOINT_DIR

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    def manifest_path(self, seq: int) -> Path:
        return self.root / f"ckpt-{seq:06d}.json"

    def manifests(self) -> list[int]:
        """Sequence numbers of the manifests on disk, newest first."""
        if not self.root.is_dir():
            return []
        seqs = []
        for p in self.root.glob("ckpt-*.json"):
            try:
                seqs.append(int(p.stem.removeprefix("ckpt-")))
            except ValueError:
                continue
        return sorted(seqs, reverse=True)

    # -- writing -------------------------------------------------------------------

    def put(self, obj: Any) -> str:
        """Store ``obj`` as a content-addressed blob (written only if not there yet)."""
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        digest = sha256(data)
        path = self.blobs / f"{digest}.pkl"
        if self._sizes.get(digest) != len(data):
            if not (path.is_file() and path.stat().st_size == len(data)):
                atomic_write(path, data, sync_dir=False)  # save() syncs the directory once
            self._sizes[digest] = len(data)
        return digest

    def save(
        self,
        seq: int,
        *,
        journal_bytes: int,
        journal_sha256: str,
        config: dict[str, Any],
        loop: dict[str, Any],
        states: list[Any],
        best_state: Any | None,
        step: int,
    ) -> int:
        """Write checkpoint ``seq`` (blobs first, the manifest last), then collect garbage.

        Returns the bytes newly written.
        """
        self.blobs.mkdir(parents=True, exist_ok=True)
        before = sum(self._sizes.values())
        body = {
            "format": FORMAT,
            "seq": seq,
            "step": step,
            "journal_bytes": journal_bytes,
            "journal_sha256": journal_sha256,
            "config_sha256": config_digest(config),
            "loop": self.put(loop),
            "states": [self.put(s) for s in states],
            "best_state": self.put(best_state) if best_state is not None else None,
        }
        fsync_dir(self.blobs)  # every blob is durable before the manifest names it
        text = json.dumps({"sha256": sha256(_canonical(body)), "body": body}, indent=1)
        atomic_write(self.manifest_path(seq), text.encode())
        written = sum(self._sizes.values()) - before + len(text)
        self.collect(keep=2)
        return written

    def collect(self, keep: int) -> None:
        """Delete all but the ``keep`` newest manifests and every blob none of them names.

        Two are kept so that a checkpoint found corrupt on resume has a good predecessor.
        The weights of past networks are not needed by the lineage (schedules are replayed
        from hyperparameters), so only live workers' states (and, with ``keep_best``, the
        best network's) survive.
        """
        seqs = self.manifests()
        live: set[str] = set()
        for seq in seqs[:keep]:
            try:
                body = self.read_manifest(seq)
            except BadFile:
                continue
            live.update(_blob_names(body))
        for seq in seqs[keep:]:
            self.manifest_path(seq).unlink(missing_ok=True)
        for d in (self.root, self.blobs):
            for tmp in d.glob(".*.tmp"):  # left by a write that was killed
                tmp.unlink(missing_ok=True)
        if self.blobs.is_dir():
            for p in self.blobs.glob("*.pkl"):
                if p.stem not in live:
                    p.unlink(missing_ok=True)
                    self._sizes.pop(p.stem, None)

    def finish(self, best_state: Any | None, best: dict[str, Any] | None) -> None:
        """The run ended: keep the best network's state (``keep_best``), else nothing."""
        for seq in self.manifests():
            self.manifest_path(seq).unlink(missing_ok=True)
        live: set[str] = set()
        if self.keep_best and best_state is not None:
            self.blobs.mkdir(parents=True, exist_ok=True)
            digest = self.put(best_state)
            live.add(digest)
            doc = {"best_state": f"blobs/{digest}.pkl", "sha256": digest, "best": best}
            atomic_write(self.root / "best.json", json.dumps(doc, indent=1).encode())
        if self.blobs.is_dir():
            for p in self.blobs.glob("*.pkl"):
                if p.stem not in live:
                    p.unlink(missing_ok=True)
        for d in (self.blobs, self.root):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()

    # -- reading -------------------------------------------------------------------

    def read_manifest(self, seq: int) -> dict[str, Any]:
        path = self.manifest_path(seq)
        try:
            doc = json.loads(path.read_bytes())
            body = doc["body"]
            ok = doc["sha256"] == sha256(_canonical(body))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BadFile(f"unreadable ({type(exc).__name__})") from None
        if not ok:
            raise BadFile("sha256 mismatch")
        if body.get("format") != FORMAT:
            raise BadFile(f"format {body.get('format')}, expected {FORMAT}")
        return dict(body)

    def read_blob(self, digest: str) -> Any:
        path = self.blobs / f"{digest}.pkl"
        try:
            data = path.read_bytes()
        except OSError:
            raise BadFile("missing") from None
        if sha256(data) != digest:
            raise BadFile("sha256 mismatch (truncated or corrupted)")
        return pickle.loads(data)  # noqa: S301  (verified; see the module docstring)

    def load(self, seq: int, config: dict[str, Any]) -> Loaded:
        """Verify and load checkpoint ``seq``; raise :class:`ProblemError` if it is bad."""
        name = f"{CHECKPOINT_DIR}/{self.manifest_path(seq).name}"
        try:
            body = self.read_manifest(seq)
        except BadFile as exc:
            raise ProblemError(Problem(seq, name, str(exc))) from None
        if body["config_sha256"] != config_digest(config):
            raise ProblemError(Problem(seq, name, "written for another config"))
        blobs: list[tuple[str, int | None]] = [(body["loop"], None)]
        blobs += [(d, w) for w, d in enumerate(body["states"])]
        values = []
        for digest, worker in blobs:
            try:
                values.append(self.read_blob(digest))
            except BadFile as exc:
                file = f"{CHECKPOINT_DIR}/blobs/{digest}.pkl"
                raise ProblemError(Problem(seq, file, str(exc), worker)) from None
        return Loaded(
            seq=seq,
            journal_bytes=int(body["journal_bytes"]),
            journal_sha256=str(body["journal_sha256"]),
            loop=values[0],
            states=values[1:],
            best_state=body.get("best_state"),
        )


class ProblemError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.problem)
        self.problem = problem


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _blob_names(body: dict[str, Any]) -> set[str]:
    names = {body["loop"], *body["states"]}
    if body.get("best_state"):
        names.add(body["best_state"])
    return names
