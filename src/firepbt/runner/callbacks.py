"""The callback protocol: how code outside the loop watches a run.

A callback is an object with any of the hooks of :class:`Callback` (subclass it and
override what you need), or a plain function of one :class:`~firepbt.runner.events.Event`.
Pass callbacks as ``firepbt.run(config, out, callbacks=[...])`` (or ``resume``); the
loggers a config's ``[log]`` table switches on (TensorBoard, Weights & Biases, MLflow)
and the live view are callbacks of the same kind.

When the run calls what:

1. :meth:`Callback.on_run_start` once, after the run directory exists and before the
   first event; on ``firepbt resume`` with ``info.resumed`` and, in ``info.history``,
   the events already in the journal (up to the checkpoint the run continues from), so a
   callback can rebuild its state.
2. :meth:`Callback.on_event` for every event, in journal order, right after the event
   was written to the journal (journal before effect: a decision is seen before the
   executor acts on it). Its default sends each kind on to one hook: ``on_start``,
   ``on_result`` (every result), ``on_decision`` (every ``Hparams``, ``Copy``,
   ``Assign``, ``Free``, ``Check``), ``on_checkpoint`` (each checkpoint taken, not a
   journalled event), ``on_end``; faults, resumes and unknown kinds only reach
   ``on_event``.
3. :meth:`Callback.on_run_end` once, last: with the result (as in ``result.json``,
   already written) when the run finished, or ``None`` when it stopped on an exception
   (which then propagates). Close files and remote runs here.

What a callback may do: observe. It runs in the controller's thread, between two steps
of the loop, so it should be quick (buffer, or hand work to a thread); it must not
change the event objects or the run (they are shared with the other callbacks). It
cannot stop the run: an exception a hook raises is reported once (one warning on the
``firepbt`` logger, the traceback appended to ``DIR/callback-errors.log``), that
callback is switched off for the rest of the process, and the run goes on with its
journal intact. (``KeyboardInterrupt`` and other ``BaseException`` still stop it.)
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firepbt.runner.events import (
    Assign,
    Check,
    Checkpoint,
    Copy,
    Decision,
    End,
    Event,
    Free,
    Hparams,
    OtherEvent,
    Result,
    Start,
    WorkerRole,
)

if TYPE_CHECKING:
    from firepbt.config import Config

__all__ = ["Callback", "CallbackLike", "CallbackList", "FunctionCallback", "RunInfo"]

LOGGER = logging.getLogger("firepbt")
ERRORS_FILE = "callback-errors.log"


@dataclass(frozen=True)
class RunInfo:
    """What a callback is told when the run (or a resumed run) starts.

    ``out_dir``: the run directory (a logger may keep its own files there, e.g. the ids
    of its remote runs, so that ``firepbt resume`` continues them). ``config``: the
    validated config. ``roles``: worker ``w``'s role is ``roles[w]``. ``resumed``: this
    process continues an earlier one (``checkpoint``: from which checkpoint; None: from
    the start). ``history``: the journal's events before this process's first one.
    """

    out_dir: Path
    config: Config
    roles: tuple[WorkerRole, ...]
    resumed: bool = False
    checkpoint: int | None = None
    history: tuple[Event, ...] = ()

    @property
    def name(self) -> str:
        """The experiment's name: the run directory's name."""
        return self.out_dir.resolve().name


class Callback:
    """Base class of callbacks: every hook does nothing until overridden."""

    def on_run_start(self, info: RunInfo) -> None:
        """Once, before the first event of this process."""

    def on_event(self, event: Event) -> None:
        """Every event; the default calls the hook for its kind."""
        if isinstance(event, Result):
            self.on_result(event)
        elif isinstance(event, Hparams | Copy | Assign | Free | Check):
            self.on_decision(event)
        elif isinstance(event, Checkpoint):
            self.on_checkpoint(event)
        elif isinstance(event, Start):
            self.on_start(event)
        elif isinstance(event, End):
            self.on_end(event)

    def on_start(self, event: Start) -> None:
        """The run's ``start`` event (not sent again on resume: see ``info.history``)."""

    def on_result(self, event: Result) -> None:
        """A worker's result: its score after an evaluation interval."""

    def on_decision(self, event: Decision) -> None:
        """A decision of the algorithm (new hyperparameters, a weight copy, FIRE's
        evaluator assignments, frees and checks)."""

    def on_checkpoint(self, event: Checkpoint) -> None:
        """A checkpoint was taken (``firepbt resume`` continues from here once its files
        are written, which the store does in the background)."""

    def on_end(self, event: End) -> None:
        """The last journalled event of a finished run."""

    def on_run_end(self, info: RunInfo, result: dict[str, Any] | None) -> None:
        """Once, last: ``result`` when the run finished, None when it stopped on an error."""


class FunctionCallback(Callback):
    """Wraps a function of one event as a callback."""

    def __init__(self, fn: Callable[[Event], Any]) -> None:
        self.fn = fn

    def on_event(self, event: Event) -> None:
        """Call the wrapped function with every event."""
        self.fn(event)

    def __repr__(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))


def callback_name(cb: Any) -> str:
    """How a failure report names a callback: its class, or the wrapped function's name."""
    if isinstance(cb, FunctionCallback):
        return repr(cb)
    return type(cb).__name__


CallbackLike = Callback | Callable[[Event], Any]
"""What ``callbacks=[...]`` accepts: a :class:`Callback` or a function of one event."""


class CallbackList:
    """Calls the hooks of several callbacks, each failure reported once (see the module).

    A callback whose hook raised is switched off; the others go on.
    """

    def __init__(self, callbacks: Sequence[CallbackLike] = ()) -> None:
        self.callbacks: list[Callback] = [
            cb if isinstance(cb, Callback) else FunctionCallback(cb) for cb in callbacks
        ]
        self.failed: dict[int, str] = {}  # index -> the one-line report
        self.info: RunInfo | None = None

    def __bool__(self) -> bool:
        return len(self.failed) < len(self.callbacks)

    def _call(self, what: str, fn: Callable[[Callback], None]) -> None:
        for i, cb in enumerate(self.callbacks):
            if i in self.failed:
                continue
            try:
                fn(cb)
            except Exception as exc:
                self._fail(i, cb, what, exc)

    def _fail(self, i: int, cb: Callback, what: str, exc: Exception) -> None:
        text = (str(exc).strip().splitlines() or [""])[0]
        if len(text) > 200:
            text = text[:200] + "..."
        line = (
            f"callback {callback_name(cb)} failed in {what} ({type(exc).__name__}: {text}); "
            "it is switched off, the run goes on"
        )
        self.failed[i] = line
        where = ""
        if self.info is not None:
            try:
                path = self.info.out_dir / ERRORS_FILE
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n" + traceback.format_exc() + "\n")
                where = f" (traceback in {path})"
            except OSError:
                pass
        LOGGER.warning("firepbt: warning: %s%s", line, where)

    def run_start(self, info: RunInfo) -> None:
        """Call every callback's ``on_run_start``."""
        self.info = info
        self._call("on_run_start", lambda cb: cb.on_run_start(info))

    def event(self, event: Event) -> None:
        """Show ``event`` to every callback still on (``on_event``)."""
        kind = event.name if isinstance(event, OtherEvent) else event.kind
        self._call(f"on_event({kind})", lambda cb: cb.on_event(event))

    def run_end(self, result: dict[str, Any] | None) -> None:
        """Call every callback's ``on_run_end`` (nothing if the run never started)."""
        info = self.info
        if info is None:
            return
        self._call("on_run_end", lambda cb: cb.on_run_end(info, result))
