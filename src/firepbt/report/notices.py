"""What the console must say while a run goes on: user-code errors, faults, resumes.

:class:`Notices` is an observer of the run's events, beside the live view: the live view
shows the population's progress, the notices tell what went wrong or happened once and
needs the user's attention, on stderr (under a ``rich`` live panel they are printed
above it):

- ``user_error``: the first occurrence of each distinct exception raised by the
  trainable's code, with its traceback (file and line in the user's module);
- ``fault``: a worker process or actor that died or overran ``task_timeout``, and what
  the executor did (retry, gave up, dropped a stale task);
- ``resume`` and ``checkpoint_corrupt``: where ``firepbt resume`` continues from.

Only the wording lives here; what is journalled is the run loop's business.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

Event = dict[str, Any]
MAX_FAULTS_SHOWN = 20  # then only the progress line's count goes up


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _attempts(n: Any) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def fault_text(ev: Event) -> str:
    """One line for a ``fault`` event."""
    worker, slot, reason = ev.get("worker"), ev.get("slot"), str(ev.get("reason", "?"))
    action = str(ev.get("action", ""))
    where = f" on slot {slot}" if slot is not None else ""
    during = ev.get("during")
    if during in ("test", "replay"):  # outside a task: executors/pool.py
        what = f"worker {worker}'s test" if during == "test" else "the replay"
        if action.startswith("overran"):  # in-process: reported, not stopped
            return (
                f"{what} finished after {_fmt(ev.get('seconds'))} s (over its time limit, "
                f"{_fmt(ev.get('timeout_s'))} s)"
            )
        if reason == "timeout":
            what += f" ran over its time limit ({_fmt(ev.get('timeout_s'))} s); killed its worker{where}"
        else:
            what += f": the worker process running it died{where} ({reason})"
        attempt = ev.get("attempt")
        if action == "retry":
            return f"{what}; retrying (retry {attempt})"
        missing = "the test score is missing" if during == "test" else "the replay failed"
        return f"{what}; gave up after {_attempts(attempt)}: {missing}"
    if reason == "timeout":
        limit = _fmt(ev.get("timeout_s"))
        if action.startswith("overran"):
            return (
                f"worker {worker}'s task finished after {_fmt(ev.get('seconds'))} s "
                f"(over task_timeout = {limit} s)"
            )
        what = f"worker {worker}'s task ran over task_timeout = {limit} s; killed its worker{where}"
    elif worker is None:
        return f"a worker process{where} died while idle ({reason}); restarted it"
    else:
        what = f"the worker process running worker {worker}'s task died{where} ({reason})"
    attempt = ev.get("attempt")
    if action == "retry":
        return f"{what}; retrying the task (retry {attempt})"
    if action == "failed":
        return f"{what}; gave up after {_attempts(attempt)}: the network counts as failed"
    if action.startswith("dropped"):
        return f"{what}; the task was no longer needed (its network had been replaced)"
    return f"{what}; {action}"


def error_text(ev: Event) -> str:
    """The first occurrence of a distinct exception in the user's code, with its traceback."""
    where = f" at {ev['where']}" if ev.get("where") else ""
    head = (
        f"the trainable's code raised {ev.get('error')}{where} "
        f"(worker {ev.get('worker')}, step {ev.get('step')}): that network counts as "
        "failed. Each distinct error is shown once; `firepbt show DIR` counts them."
    )
    tb = str(ev.get("traceback") or "").rstrip()
    return head + ("\n" + tb if tb else "")


def resume_text(ev: Event) -> str:
    where = "the start" if ev.get("checkpoint") is None else f"checkpoint {ev['checkpoint']}"
    steps = f" of {ev['steps']}" if ev.get("steps") else ""
    best = ev.get("best")
    best_text = f"; best so far {_fmt(best)}" if best is not None else "; no finite score yet"
    return f"resumed from {where}, at step {ev.get('step')}{steps}{best_text}"


class Notices:
    """Prints the notable events on ``stream`` (default: the current ``sys.stderr``)."""

    def __init__(self, stream: IO[str] | None = None, prefix: str = "firepbt: ") -> None:
        self.stream = stream
        self.prefix = prefix
        self.faults = 0
        self.handlers: dict[str, Callable[[Event], str | None]] = {
            "user_error": error_text,
            "fault": self._fault,
            "resume": resume_text,
            "checkpoint_corrupt": lambda ev: (
                f"checkpoint {ev.get('checkpoint')}: {ev.get('file')}: {ev.get('problem')} "
                f"(not used; falling back to "
                f"{'checkpoint ' + str(ev['fallback']) if ev.get('fallback') is not None else 'the start'})"
            ),
        }

    def _fault(self, ev: Event) -> str | None:
        self.faults += 1
        if self.faults > MAX_FAULTS_SHOWN:
            return None
        text = fault_text(ev)
        if self.faults == MAX_FAULTS_SHOWN:
            text += " (further faults are only counted, in the progress line)"
        return text

    def __call__(self, ev: Event) -> None:
        handler = self.handlers.get(str(ev.get("ev")))
        text = handler(ev) if handler else None
        if text:
            stream = self.stream or sys.stderr
            stream.write(self.prefix + text + "\n")
            stream.flush()

    def close(self) -> None:
        pass
