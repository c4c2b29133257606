"""The events journal: one JSON object a line, appended, flushed after every write.

The journal is the single source of truth of a run: lineage, schedules, curves, tables
and plots are all rebuilt from it (:func:`read_events`). JSON lines were chosen over
SQLite because the file is append-only, human-readable, survives a crash with at most
a torn last line (which :func:`read_events` ignores) and needs no dependency.
"""

from __future__ import annotations

import json
import math
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
    """Appends events to ``DIR/events.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, event: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(clean(event), sort_keys=False, allow_nan=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


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
