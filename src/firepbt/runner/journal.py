"""The events journal: one JSON object a line, appended, flushed after every write.

The journal is the single source of truth of a run: lineage, schedules, curves, tables
and plots are all rebuilt from it (:func:`read_events`). JSON lines were chosen over
SQLite because the file is append-only, human-readable, survives a crash with at most
a torn last line (which :func:`read_events` ignores) and needs no dependency.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

EVENTS_FILE = "events.jsonl"


def clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None, numpy scalars become Python ones."""
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Journal:
    """Appends events to ``DIR/events.jsonl``.

    Each line is flushed to the OS before :meth:`write` returns, so a killed controller
    loses nothing it wrote (the loop journals every decision before carrying it out);
    checkpoints fsync. The journal knows its length in bytes and the SHA-256 of its
    content, which a checkpoint records: on resume the journal is cut back to that
    length, after checking the content, and the events after it are written again.
    """

    def __init__(self, path: Path, *, keep_bytes: int | None = None) -> None:
        self.path = path
        self._hash = hashlib.sha256()
        if keep_bytes is None:
            self._fh: IO[bytes] = open(path, "ab")  # noqa: SIM115
            self.bytes = self._fh.tell()
            if self.bytes:
                self._hash.update(path.read_bytes())
        else:
            self._fh = open(path, "r+b")  # noqa: SIM115
            self._hash.update(self._fh.read(keep_bytes))
            self._fh.truncate(keep_bytes)
            self._fh.seek(keep_bytes)
            self.bytes = keep_bytes

    def write(self, event: Mapping[str, Any]) -> None:
        """Append ``event`` as one JSON line and flush it to the OS."""
        try:  # the usual event holds plain JSON values only: no need to walk it first
            text = json.dumps(event, allow_nan=False)
        except (TypeError, ValueError):  # numpy values, NaN or inf: clean() them (same text)
            text = json.dumps(clean(event), sort_keys=False, allow_nan=False)
        line = (text + "\n").encode()
        self._fh.write(line)
        self._fh.flush()
        self._hash.update(line)
        self.bytes += len(line)

    @property
    def sha256(self) -> str:
        """SHA-256 of the journal's content so far."""
        return self._hash.hexdigest()

    def sync(self) -> None:
        """fsync the journal (skipped with ``FIREPBT_FSYNC=0``)."""
        if os.environ.get("FIREPBT_FSYNC", "1") != "0":
            os.fsync(self._fh.fileno())

    def dup_fd(self) -> int:
        """A duplicate descriptor of the journal (every line is flushed already), for a
        checkpoint writer thread to fsync even after the journal is closed."""
        return os.dup(self._fh.fileno())

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def prefix_sha256(path: Path, n: int) -> str | None:
    """SHA-256 of the first ``n`` bytes of ``path`` (None when it is shorter)."""
    with open(path, "rb") as fh:
        data = fh.read(n)
    return hashlib.sha256(data).hexdigest() if len(data) == n else None


def read_events(path: Path | str) -> Iterator[dict[str, Any]]:
    """Events of a journal file (or of a run directory), oldest first."""
    p = Path(path)
    if p.is_dir():
        p = p / EVENTS_FILE
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                return  # a torn last line from a crash
            yield json.loads(line)
