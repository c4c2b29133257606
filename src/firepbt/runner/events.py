"""The run's events, typed: one frozen dataclass per kind of line in ``events.jsonl``.

The journal (:mod:`firepbt.runner.journal`) stores each event as a JSON object whose ``"ev"``
field names its kind; :func:`parse_event` turns such a dict into the matching class and
:meth:`Event.to_dict` turns it back (``parse_event(d).to_dict() == d`` for every line a
run writes). Callbacks (:mod:`firepbt.runner.callbacks`) receive these objects.

Steps are a network's steps (SPEC "Lineage and schedules"): ``Result.step`` is the step
the worker's network reached, which jumps when weights are copied into the worker
(``Copy``). Scores are raw, as the trainable's ``evaluate()`` returned them
(``direction`` says whether higher is better); a diverged score is ``None``.

Journalled kinds, in the order a run writes them: ``Start`` (once), then per result
``Result``, followed by the decisions it caused (``Hparams``, ``Copy``, ``Assign``,
``Free``, FIRE's ``Check``), ``Fault`` when a worker process died, ``CheckpointCorrupt``
and ``Resume`` on ``firepbt resume``, ``End`` (once). ``Checkpoint`` is not journalled
(a checkpoint records the journal's length; it is not part of it): it is only shown to
callbacks. A kind this version does not know is parsed as :class:`OtherEvent`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "Assign",
    "Check",
    "Checkpoint",
    "CheckpointCorrupt",
    "Copy",
    "Decision",
    "End",
    "Event",
    "Fault",
    "Free",
    "Hparams",
    "OtherEvent",
    "Result",
    "Resume",
    "Start",
    "WorkerRole",
    "parse_event",
]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base class of every event. ``extra`` holds fields this version does not name;
    ``absent`` the optional fields the journal line did not have (left out again by
    :meth:`to_dict`)."""

    kind: ClassVar[str] = ""
    _omit_none: ClassVar[tuple[str, ...]] = ()  # optional fields left out of the journal

    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    absent: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The journal's form: ``{"ev": kind, field: value, ...}``."""
        out: dict[str, Any] = {"ev": self.kind}
        absent, omit = self.absent, self._omit_none
        for name in _field_names(type(self)):
            if name in absent:
                continue
            value = getattr(self, name)
            if value is None and name in omit:
                continue
            out[name] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """The event of a journal dict: known fields by name, the rest in ``extra``."""
        names = _field_set(cls)
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names and k != "ev"}
        return cls(**known, extra=extra, absent=frozenset(names.difference(data)))


# An event class's field names (``extra`` and ``absent`` left out) in declaration order,
# computed once per class: the live view parses and re-forms every event of a run, 10,000
# per ready point at 1000 workers, and dataclasses.fields() walks the class each call.
_NAMES: dict[type, tuple[str, ...]] = {}
_SETS: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "absent"))
        _NAMES[cls] = names
    return names


def _field_set(cls: type) -> frozenset[str]:
    names = _SETS.get(cls)
    if names is None:
        names = _SETS[cls] = frozenset(_field_names(cls))
    return names


@dataclass(frozen=True)
class WorkerRole:
    """A worker's place in the population: ``role`` is ``"member"`` (of sub-population
    ``subpop``, 1 = P1, the one whose members are trained for the result) or
    ``"evaluator"`` (FIRE's evaluators, SPEC "Evaluators"; ``subpop`` None)."""

    role: str
    subpop: int | None

    def name(self, worker: int) -> str:
        """``P1/member_3`` or ``evaluator_9``: the name loggers give the worker."""
        if self.role == "member":
            return f"P{self.subpop or 1}/member_{worker}"
        return f"{self.role}_{worker}"


@dataclass(frozen=True, kw_only=True)
class Start(Event):
    """The run started: its workers' roles and seeds, and the whole config (as a dict)."""

    kind: ClassVar[str] = "start"
    version: str
    workers: int
    roles: tuple[WorkerRole, ...]
    seeds: list[int]
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The journal's form, with ``roles`` as ``[[role, subpop], ...]``."""
        out = super().to_dict()
        out["roles"] = [[r.role, r.subpop] for r in self.roles]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Read ``roles`` from the journal's ``[[role, subpop], ...]``."""
        data = dict(data)
        data["roles"] = tuple(WorkerRole(str(r), s) for r, s in data["roles"])
        return super().from_dict(data)


@dataclass(frozen=True, kw_only=True)
class Result(Event):
    """Worker ``worker`` trained network ``net`` from step ``start`` to ``step`` with
    ``hparams`` and scored ``score`` (None: diverged). ``test`` is set when this result
    became the best so far (the trainable's ``test()``); ``error`` when the task failed."""

    kind: ClassVar[str] = "result"
    _omit_none: ClassVar[tuple[str, ...]] = ("test", "error")
    worker: int
    net: int
    start: int
    step: int
    hparams: dict[str, Any]
    score: float | None
    test: float | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Hparams(Event):
    """Decision: ``worker`` trains on with ``hparams`` from ``step`` (``reason``: init,
    explore, assign or schedule)."""

    kind: ClassVar[str] = "hparams"
    worker: int
    net: int
    step: int
    hparams: dict[str, Any]
    reason: str


@dataclass(frozen=True, kw_only=True)
class Copy(Event):
    """Decision: the weights of ``src`` (network ``src_net`` at ``step``) are copied into
    ``dst``, which holds the new network ``net`` from then on. ``reason``: ``exploit``
    (PBT's truncation selection), ``assign`` (an evaluator gets a parent's weights) or
    ``success`` (an evaluator beat its target; SPEC "Evaluators")."""

    kind: ClassVar[str] = "copy"
    src: int
    dst: int
    step: int
    src_net: int
    net: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class Assign(Event):
    """Decision (FIRE): ``evaluator`` evaluates ``parent``'s schedule against ``target``."""

    kind: ClassVar[str] = "assign"
    evaluator: int
    parent: int
    target: int


@dataclass(frozen=True, kw_only=True)
class Free(Event):
    """Decision (FIRE): ``evaluator`` is released (``reason``: success, stop, ...)."""

    kind: ClassVar[str] = "free"
    evaluator: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class Check(Event):
    """FIRE's statistical check of an evaluator against its target (SPEC "Evaluators"):
    binomial ``p``, the stopping ``threshold``, the best-score ``diff`` and the
    ``outcome`` (success, stop or continue)."""

    kind: ClassVar[str] = "check"
    evaluator: int
    parent: int
    target: int
    trained: int
    p: float | None
    threshold: float
    diff: float | None
    outcome: str


@dataclass(frozen=True, kw_only=True)
class Fault(Event):
    """A worker process or actor died (executors); ``action``: respawn, retry, failed..."""

    kind: ClassVar[str] = "fault"
    _omit_none: ClassVar[tuple[str, ...]] = ("token", "attempt")
    slot: int | None = None
    reason: str = ""
    worker: int | None = None
    action: str = ""
    token: int | None = None
    attempt: int | None = None


@dataclass(frozen=True, kw_only=True)
class CheckpointCorrupt(Event):
    """On resume: checkpoint ``checkpoint`` could not be loaded (``file``: ``problem``);
    the run goes on from ``fallback`` (None: from the start)."""

    kind: ClassVar[str] = "checkpoint_corrupt"
    _omit_none: ClassVar[tuple[str, ...]] = ("worker",)
    checkpoint: int
    file: str
    problem: str
    worker: int | None = None
    fallback: int | None = None


@dataclass(frozen=True, kw_only=True)
class Resume(Event):
    """``firepbt resume`` continues from checkpoint ``checkpoint`` (None: from the start)."""

    kind: ClassVar[str] = "resume"
    checkpoint: int | None
    step: int


@dataclass(frozen=True, kw_only=True)
class End(Event):
    """The run reached its step budget; ``step`` is the furthest network step."""

    kind: ClassVar[str] = "end"
    step: int


@dataclass(frozen=True, kw_only=True)
class Checkpoint(Event):
    """Not journalled: checkpoint ``seq`` was taken at the population's ready point
    (``step``: the furthest network step): its ``bytes`` (new bytes to write) were
    pickled in ``seconds`` of the loop's time; the store writes and fsyncs the files in
    the background, and ``firepbt resume`` uses the checkpoint once its manifest is."""

    kind: ClassVar[str] = "checkpoint"
    seq: int
    step: int
    bytes: int
    seconds: float


@dataclass(frozen=True, kw_only=True)
class OtherEvent(Event):
    """An event of a kind this version does not know: its dict is in ``data``."""

    name: str
    data: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The dict exactly as it was read."""
        return dict(self.data)


Decision = Hparams | Copy | Assign | Free | Check
"""The decisions a decider takes (journalled before they take effect)."""

_KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        Start,
        Result,
        Hparams,
        Copy,
        Assign,
        Free,
        Check,
        Fault,
        CheckpointCorrupt,
        Resume,
        End,
        Checkpoint,
    )
}


def parse_event(data: Mapping[str, Any]) -> Event:
    """The typed event of a journal line (a dict with an ``"ev"`` field)."""
    kind = str(data.get("ev", ""))
    cls = _KINDS.get(kind)
    if cls is None:
        return OtherEvent(name=kind, data=dict(data))
    try:
        return cls.from_dict(data)
    except (TypeError, KeyError, ValueError):  # a field missing or of another shape
        return OtherEvent(name=kind, data=dict(data))
