"""Failed tasks: a bug in the user's code, or divergence? (SPEC "Bad scores", issue 9).

SPEC "Bad scores" makes every raise a divergence and lets the experiment go on; issue 9
adds the one exception below, where going on could only hide a bug.

A task fails when ``train``/``evaluate`` raised, or its worker died or overran
``task_timeout`` more often than ``max_retries``; a non-finite score is divergence. The
loop treats every failed network as diverged (exploit replaces it) except where the
failures can only be a bug:

- no network has ever trained successfully and every member has finished its first
  task with at least one failure among them; or
- every network of a sub-population failed at its first task (none had ever trained
  successfully).

Then the run stops with :class:`~firepbt.core.errors.UserCodeError` (exit status 1 on
the command line) carrying the first failure's traceback. A failure of a network that
trained successfully before (or was copied from one that did) is divergence, as is any
non-finite score.

Each distinct exception (its type and the user's file and line) is journalled once as
a ``user_error`` event with its traceback, so the console can show it while the run
goes on; every result it caused carries its ``error_id``, and ``result.json`` counts
them (``errors``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from firepbt.core.errors import UserCodeError
from firepbt.executors.base import NONFINITE, TaskResult

if TYPE_CHECKING:
    from firepbt.runner.loop import Run


@dataclass
class Failures:
    """What went wrong in the trainable's code so far (checkpointed with the loop)."""

    errors: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> record
    good: set[int] = field(default_factory=set)  # nets that trained successfully
    tried: set[int] = field(default_factory=set)  # nets whose first task finished
    failed_first: dict[int, TaskResult] = field(default_factory=dict)  # net -> its failure

    def fork(self, src_net: int, new_net: int) -> None:
        """``new_net`` starts from ``src_net``'s weights: good if they were."""
        if src_net in self.good:
            self.good.add(new_net)
            self.tried.add(new_net)

    def summary(self) -> list[dict[str, Any]]:
        """The distinct errors, most frequent first (``result.json``'s ``errors``)."""
        rows = [{k: v for k, v in e.items() if k != "traceback"} for e in self.errors.values()]
        return sorted(rows, key=lambda e: (-e["count"], e["id"]))


def crashed(r: TaskResult) -> bool:
    """``train``/``evaluate`` raised, or the worker died or timed out too often."""
    return r.error is not None and not r.error.startswith(NONFINITE)


def record_failure(run: Run, w: int, r: TaskResult, start: int) -> int | None:
    """Note a finished task of worker ``w`` (before its result is journalled); journal the
    first occurrence of a distinct exception. Returns the exception's id, if it raised."""
    f = run.failures
    net = run.net[w]
    first = net not in f.tried
    f.tried.add(net)
    if r.error is None:
        f.good.add(net)
        return None
    if first and crashed(r) and net not in f.good:
        f.failed_first[net] = r
    if r.traceback is None:
        return None
    kind = r.error.split(":", 1)[0]
    key = f"{kind}@{r.where}"
    e = f.errors.get(key)
    if e is None:
        e = {
            "id": len(f.errors),
            "error": r.error,
            "where": r.where,
            "count": 0,
            "worker": w,
            "step": start,
            "traceback": r.traceback,
        }
        f.errors[key] = e
        run.emit(
            {
                "ev": "user_error",
                "id": e["id"],
                "error": r.error,
                "where": r.where,
                "worker": w,
                "net": net,
                "step": start,
                "traceback": r.traceback,
            }
        )
    e["count"] += 1
    return int(e["id"])


def check_for_bug(run: Run, failed_before: int) -> None:
    """Stop the run (``abort`` event, UserCodeError) when its failures can only be a bug.

    Called after each result with the number of first-task failures before it. Once some
    network trained successfully, only a new first-task failure can complete a
    sub-population of them (a copy brings a network that is not among them), so the
    members are looked at only then, not at every result of a long run.
    """
    f = run.failures
    if not f.failed_first or (f.good and len(f.failed_first) == failed_before):
        return
    members = run.decider.members()
    nets: dict[int, list[int]] = {}  # sub-population -> its members' networks, in order
    for w in members:
        nets.setdefault(w.subpop, []).append(run.net[w.id])
    what = None
    for subpop, group in sorted(nets.items()):
        if all(n in f.failed_first for n in group):
            many = len(nets) > 1
            what = f"every network of sub-population P{subpop}" if many else "every network"
            first = f.failed_first[group[0]]
            break
    else:
        everyone = [run.net[w.id] for w in members]
        if not f.good and all(n in f.tried for n in everyone):
            what = "no network trained successfully: every member"
            first = next(f.failed_first[n] for n in everyone if n in f.failed_first)
    if what is None:
        return
    where = f" at {first.where}" if first.where else ""
    message = (
        f"{what} failed at its first task ({first.error}{where}). That is a bug in the "
        "trainable's code (or its args or search space), not divergence: the run stopped."
    )
    run.emit(
        {
            "ev": "abort",
            "reason": "user_error",
            "message": message,
            "error": first.error,
            "where": first.where,
            "traceback": first.traceback,
        }
    )
    raise UserCodeError(message, first.traceback)
