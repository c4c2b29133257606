"""Events in, commands out: the contract between the deciders and the run loop.

A decider (random search, PBT, FIRE PBT) is pure: it holds the population's state as
plain data, receives events (a worker reported a score, workers became ready) and
returns commands (set hyperparameters, copy weights, assign or free an evaluator). It
performs no I/O, reads no clock and draws random numbers only from the generator it
was given. The run loop (:mod:`firepbt.runner.loop`) carries the commands out.

Scores seen by a decider are always "higher is better": a minimised objective is
negated once, at the boundary, by the run loop.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from firepbt.core.curves import Curve

Hparams = dict[str, Any]


@dataclass(frozen=True)
class SetHparams:
    """Worker ``worker`` trains with ``hparams`` from now on."""

    worker: int
    hparams: Hparams
    reason: str  # "init" | "explore" | "assign" | "schedule"


@dataclass(frozen=True)
class CopyWeights:
    """``dst`` discards its network and takes ``src``'s weights and step count (SPEC "Weight copies")."""

    src: int
    dst: int
    reason: str  # "exploit" | "assign" | "success"


@dataclass(frozen=True)
class Assign:
    """Evaluator ``evaluator`` starts evaluating ``parent`` against ``target`` (SPEC "FIRE PBT")."""

    evaluator: int
    parent: int
    target: int


@dataclass(frozen=True)
class Free:
    """Evaluator ``evaluator`` stops training and waits for a new assignment."""

    evaluator: int
    reason: str  # "success" | "stop" | "parent_exploited" | "target_exploited" | "target_replaced" | "diverged"


Command = SetHparams | CopyWeights | Assign | Free


@dataclass
class Worker:
    """What a decider knows of one worker (a member or an evaluator)."""

    id: int
    role: str  # "member" | "evaluator"
    subpop: int  # 1-based sub-population of a member; 0 for an evaluator
    hparams: Hparams = field(default_factory=dict)
    curve: Curve = field(default_factory=Curve)
    step: int = 0  # training steps of the network it holds
    latest: float | None = None  # latest Q (may be non-finite)
    since_eval: int = 0  # member: steps since last evaluated or last lost an evolution event
    evaluator: int | None = None  # member: its evaluator
    parent: int | None = None  # evaluator: the member it evaluates
    target: int | None = None  # evaluator: the child member it competes with
    trained: int = 0  # evaluator: T, steps trained since assignment
    checks: int = 0  # evaluator: its checks since assignment (``phi = "checked"``)

    @property
    def diverged(self) -> bool:
        return self.latest is not None and not math.isfinite(self.latest)


class Decider(ABC):
    """A population algorithm as a pure decider."""

    #: ``"sync"`` or ``"async"``, set by the constructor of each decider.
    mode: str
    workers: list[Worker]

    @abstractmethod
    def start(self) -> list[Command]:
        """Initial hyperparameters of every member (and nothing else)."""

    def on_result(self, worker: int, step: int, score: float) -> list[Command]:
        """Record the evaluation ``score`` of ``worker``'s network at ``step``."""
        w = self.workers[worker]
        delta = step - w.step
        w.step = step
        w.curve.append(step, score)
        w.latest = score
        if w.role == "member":
            w.since_eval += delta
        else:
            w.trained += delta
        if math.isfinite(score):
            self._lowest = min(self._lowest, score)
        return []

    @abstractmethod
    def on_ready(self, workers: Sequence[int]) -> list[Command]:
        """``workers`` reached a ready point: exploit-and-explore, evaluator checks."""

    # -- shared bookkeeping -------------------------------------------------------

    _lowest: float = math.inf

    @property
    def floor(self) -> float:
        """The score that replaces a non-finite one in comparisons (SPEC "Bad scores")."""
        return (self._lowest if math.isfinite(self._lowest) else 0.0) - 1.0

    def floored(self, curve: Curve) -> Curve:
        """A copy of ``curve`` with non-finite scores replaced by :attr:`floor`."""
        return curve.floored(self.floor)

    def members(self, subpop: int | None = None) -> list[Worker]:
        """The members of sub-population ``subpop`` (1-based), or all members."""
        return [
            w for w in self.workers if w.role == "member" and (subpop is None or w.subpop == subpop)
        ]

    def apply_copy(self, src: int, dst: int) -> None:
        """Mirror a weight copy in the decider's state (SPEC "Weight copies")."""
        s, d = self.workers[src], self.workers[dst]
        d.step = s.step
        d.latest = s.latest
        d.curve = Curve([s.step], [s.latest]) if s.latest is not None else Curve()
