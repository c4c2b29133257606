"""Errors raised before any training starts, and the one that stops a run midway."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """An invalid experiment: the message starts with the field it names."""


class ExecutorError(RuntimeError):
    """A run cannot go on: its executor lost every worker (the last checkpoint resumes it).

    ``faults`` are the executor's fault records not yet handed to the loop with a result
    (the loop journals them before it stops).
    """

    def __init__(self, message: str, faults: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.faults = list(faults or [])
