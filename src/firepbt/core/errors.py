"""Errors: a bad experiment (before any training starts), a bug in the user's code,
and an executor that cannot go on (both stop a run midway)."""

from __future__ import annotations

import difflib
import os
import sysconfig
import traceback
from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """An invalid experiment: the message starts with the field it names."""


def did_you_mean(word: object, options: Iterable[object]) -> str:
    """``" (did you mean 'steps'?)"`` naming the closest option, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class UserCodeError(RuntimeError):
    """The trainable's code failed in a way that is a bug, not divergence, and the run
    stopped: no network ever trained successfully, or every network of a sub-population
    failed at its first task, or its ``test()`` raised. ``traceback`` is the first
    failure's, from the user's code; ``shown``: whether the console has printed it already
    (a task's error is shown when it happens; a test's is not).
    """

    def __init__(self, message: str, traceback: str | None = None, shown: bool = True) -> None:
        super().__init__(message)
        self.traceback = traceback
        self.shown = shown

    def __reduce__(self) -> tuple[Any, ...]:  # keep the traceback across processes
        return (type(self), (str(self), self.traceback, self.shown))


_LIBRARY_DIRS = tuple(
    {
        os.path.normpath(p)
        for p in (
            sysconfig.get_paths()["stdlib"],
            sysconfig.get_paths()["purelib"],
            sysconfig.get_paths()["platlib"],
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))),  # firepbt itself
        )
    }
)


def user_frame(tb: traceback.StackSummary) -> traceback.FrameSummary | None:
    """The innermost frame in the user's code (not the standard library, an installed
    package or firepbt), else the innermost frame."""
    for frame in reversed(tb):
        path = os.path.normpath(os.path.abspath(frame.filename))
        if not path.startswith(_LIBRARY_DIRS) and not frame.filename.startswith("<"):
            return frame
    return tb[-1] if len(tb) else None


def describe_exception(exc: BaseException, skip: int = 1) -> tuple[str, str, str | None]:
    """(one line, the traceback without firepbt's first ``skip`` frames, "file:line")."""
    tb = exc.__traceback__
    for _ in range(skip):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    line = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    if isinstance(exc, SyntaxError) and exc.filename:
        return line.splitlines()[-1], text, f"{exc.filename}:{exc.lineno}"
    frame = user_frame(traceback.extract_tb(tb))
    where = f"{frame.filename}:{frame.lineno}" if frame is not None else None
    return line.splitlines()[-1] if line else type(exc).__name__, text, where


class ExecutorError(RuntimeError):
    """A run cannot go on: its executor lost every worker (the last checkpoint resumes it).

    ``faults`` are the executor's fault records not yet handed to the loop with a result
    (the loop journals them before it stops).
    """

    def __init__(self, message: str, faults: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.faults = list(faults or [])
