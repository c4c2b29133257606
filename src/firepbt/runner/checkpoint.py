"""Checkpoints of a run: atomic, checksummed, packed, written in the background.

Layout under ``DIR/checkpoints/``::

    ckpt-000007.json        a manifest: {"sha256": <of body>, "body": {...}}
    packs/pack-000007.bin   the pickled objects new in checkpoint 7, end to end

A checkpoint is taken at each ready point of the population (:mod:`firepbt.runner.loop`).
Its manifest names, for the loop's state (decider included) and for the executor's state
of each worker, an entry ``[pack, offset, length, sha256]``: where the pickled bytes lie.
The objects that changed since the last checkpoint go into one new pack, so a checkpoint
costs a fixed number of fsyncs (journal, pack, pack directory, manifest, checkpoint
directory) whatever the number of workers; a member whose weights did not change points
at its bytes in an earlier pack, unless that pack is :data:`MAX_AGE` checkpoints old
(then they are written again, so at most ``MAX_AGE + 2`` packs are alive). Every file is
written to a temporary name, fsynced, renamed into place and the directory fsynced, the
manifest last, so a kill leaves either the old file or the new one, never a torn one
under the final name. Every entry is verified against its SHA-256 on load; a checkpoint
with a bad or missing entry is never loaded, and the run falls back to the previous good
one (whose entries hold every member's previous good state).

The objects are pickled in the loop's thread at the ready point (a consistent state);
the files are written by one background thread while the run goes on, one checkpoint at
a time (the next ready point waits for the previous write). Where the controller dies
before a write finished, the manifest is missing and resume uses the previous one: it
resumes from whichever checkpoint is newest and complete, and a deterministic run is
regenerated identically from any of them.

Pickle is used because what the packs hold is plain data the process itself made (the
decider's workers and curves, a NumPy ``Generator``, the trainables' ``state_dict``,
which may hold tensors), and pickle restores it exactly; it is only ever read back from
the run's own directory after its checksum matched. As with ``torch.load``, do not
resume a run directory from a source you do not trust.
"""

from __future__ import annotations

import json
import os
import pickle
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firepbt.runner.files import (  # noqa: F401  (re-exported)
    FORMAT,
    RUN_FILE,
    atomic_write,
    config_digest,
    fsync_dir,
    fsync_enabled,
    lock_run,
    sha256,
    write_run_info,
)

CHECKPOINT_DIR = "checkpoints"


@dataclass
class Loaded:
    """A verified checkpoint: its manifest body and unpickled blobs."""

    seq: int
    journal_bytes: int
    journal_sha256: str
    loop: dict[str, Any]
    states: list[Any]
    best_state: list[Any] | None  # its entry, read with CheckpointStore.read_entry


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


#: an unchanged state is written again once the pack holding it is this many checkpoints old
MAX_AGE = 4

Entry = list[Any]  # [pack seq, offset, length, sha256] (a JSON list in the manifest)


@dataclass
class CheckpointStore:
    """The checkpoints of one run directory."""

    run_dir: Path
    keep_best: bool = False
    #: sha256 -> entry, for every object of the last checkpoint this process prepared
    _last: dict[str, Entry] = field(default_factory=dict)
    _writer: threading.Thread | None = None
    _error: BaseException | None = None
    #: per background write: (wall seconds, CPU seconds of the writer thread)
    writes: list[tuple[float, float]] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.run_dir / CHECKPOINT_DIR

    @property
    def blobs(self) -> Path:
        """Where ``keep_best`` leaves the best network's state after the run."""
        return self.root / "blobs"

    @property
    def packs(self) -> Path:
        return self.root / "packs"

    def pack_path(self, seq: int) -> Path:
        return self.packs / f"pack-{seq:06d}.bin"

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
        """Store ``obj`` as a content-addressed blob (``blobs/<sha256>.pkl``)."""
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        digest = sha256(data)
        path = self.blobs / f"{digest}.pkl"
        if not (path.is_file() and path.stat().st_size == len(data)):
            atomic_write(path, data)
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
        journal_fd: int | None = None,
        background: bool = True,
    ) -> int:
        """Take checkpoint ``seq``: pickle everything now, write the files (in the
        background thread unless ``background=False``), then collect garbage.

        ``journal_fd`` (a duplicate descriptor of the journal, closed here) is fsynced
        before the manifest is written. Waits for the previous checkpoint's write first.
        Returns the bytes to be written.
        """
        self.wait()
        chunks: list[bytes] = []
        new: dict[str, Entry] = {}
        offset = 0

        def entry(obj: Any) -> Entry:
            nonlocal offset
            data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            digest = sha256(data)
            old = new.get(digest) or self._last.get(digest)
            if old is not None and old[0] >= seq - MAX_AGE and old[2] == len(data):
                new[digest] = old
                return old
            e: Entry = [seq, offset, len(data), digest]
            chunks.append(data)
            offset += len(data)
            new[digest] = e
            return e

        body = {
            "format": FORMAT,
            "seq": seq,
            "step": step,
            "journal_bytes": journal_bytes,
            "journal_sha256": journal_sha256,
            "config_sha256": config_digest(config),
            "loop": entry(loop),
            "states": [entry(s) for s in states],
            "best_state": entry(best_state) if best_state is not None else None,
        }
        self._last = new
        pack = b"".join(chunks)
        text = json.dumps({"sha256": sha256(_canonical(body)), "body": body}, indent=1)
        if background:
            self._writer = threading.Thread(
                target=self._write_guarded,
                args=(seq, pack, text.encode(), journal_fd),
                name="firepbt-checkpoint",
                daemon=True,
            )
            self._writer.start()
        else:
            self._write(seq, pack, text.encode(), journal_fd)
        return len(pack) + len(text)

    def _write_guarded(self, seq: int, pack: bytes, text: bytes, journal_fd: int | None) -> None:
        try:
            self._write(seq, pack, text, journal_fd)
        except BaseException as exc:  # raised in the loop's thread by wait()
            self._error = exc

    def _write(self, seq: int, pack: bytes, text: bytes, journal_fd: int | None) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            if journal_fd is not None and fsync_enabled():
                os.fsync(journal_fd)
        finally:
            if journal_fd is not None:
                os.close(journal_fd)
        if pack:
            self.packs.mkdir(parents=True, exist_ok=True)
            atomic_write(self.pack_path(seq), pack)  # durable before the manifest names it
        atomic_write(self.manifest_path(seq), text)
        self.collect(keep=2)
        self.writes.append((time.perf_counter() - t0, time.thread_time() - c0))

    def wait(self) -> None:
        """Wait for the checkpoint being written; raise what its write raised."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        if self._error is not None:
            exc, self._error = self._error, None
            raise exc

    def collect(self, keep: int) -> None:
        """Delete all but the ``keep`` newest manifests and every pack none of them names.

        Two are kept so that a checkpoint found corrupt on resume has a good predecessor.
        The weights of past networks are not needed by the lineage (schedules are replayed
        from hyperparameters), so only live workers' states (and, with ``keep_best``, the
        best network's) survive.
        """
        seqs = self.manifests()
        live: set[int] = set()
        for seq in seqs[:keep]:
            try:
                body = self.read_manifest(seq)
            except BadFile:
                continue
            live.update(int(e[0]) for e in _entries(body))
        for seq in seqs[keep:]:
            self.manifest_path(seq).unlink(missing_ok=True)
        for d in (self.root, self.packs):
            for tmp in d.glob(".*.tmp"):  # left by a write that was killed
                tmp.unlink(missing_ok=True)
        if self.packs.is_dir():
            for p in self.packs.glob("pack-*.bin"):
                try:
                    seq = int(p.stem.removeprefix("pack-"))
                except ValueError:
                    continue
                if seq not in live:
                    p.unlink(missing_ok=True)

    def finish(self, best_state: Any | None, best: dict[str, Any] | None) -> None:
        """The run ended: keep the best network's state (``keep_best``), else nothing."""
        self.wait()
        for seq in self.manifests():
            self.manifest_path(seq).unlink(missing_ok=True)
        if self.packs.is_dir():
            for p in [*self.packs.glob("pack-*.bin"), *self.packs.glob(".*.tmp")]:
                p.unlink(missing_ok=True)  # (a pack set aside as *.corrupt stays)
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
        for d in (self.blobs, self.packs, self.root):
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

    def entry_file(self, entry: Entry) -> str:
        """The pack holding ``entry``, relative to the run directory."""
        return f"{CHECKPOINT_DIR}/packs/{self.pack_path(int(entry[0])).name}"

    def read_entry(self, entry: Entry, packs: dict[int, bytes] | None = None) -> Any:
        """Unpickle one object of a checkpoint after checking its SHA-256."""
        seq, offset, length, digest = int(entry[0]), int(entry[1]), int(entry[2]), entry[3]
        packs = {} if packs is None else packs
        if seq not in packs:
            try:
                packs[seq] = self.pack_path(seq).read_bytes()
            except OSError:
                raise BadFile("missing") from None
        data = packs[seq][offset : offset + length]
        if len(data) != length or sha256(data) != digest:
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
        entries: list[tuple[Entry, int | None]] = [(body["loop"], None)]
        entries += [(e, w) for w, e in enumerate(body["states"])]
        values = []
        packs: dict[int, bytes] = {}
        for entry, worker in entries:
            try:
                values.append(self.read_entry(entry, packs))
            except (BadFile, TypeError, ValueError, IndexError) as exc:
                problem = Problem(seq, self.entry_file(entry), str(exc), worker)
                raise ProblemError(problem) from None
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


def _entries(body: dict[str, Any]) -> list[Entry]:
    entries = [body["loop"], *body["states"]]
    if body.get("best_state"):
        entries.append(body["best_state"])
    return entries
