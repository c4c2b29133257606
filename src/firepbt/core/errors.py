"""Errors: a bad experiment (before any training starts) and a bug in the user's code."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """An invalid experiment: the message starts with the field it names."""


def did_you_mean(word: object, options: Iterable[object]) -> str:
    """``" (did you mean 'steps'?)"`` naming the closest option, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class UserCodeError(RuntimeError):
    """The trainable's code failed in a way that is a bug, not divergence, and the run
    stopped: no network ever trained successfully, or every network of a sub-population
    failed at its first task. ``traceback`` is the first failure's, from the user's code.
    """

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback
