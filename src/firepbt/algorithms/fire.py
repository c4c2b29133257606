"""FIRE PBT (Dalibard & Jaderberg; paper Section 3; SPEC "FIRE PBT").

Sub-population P_1 is greedy; each parent sub-population P_i (i > 1) is ranked by the
improvement rate of evaluator curves: evaluators copy a parent's weights and the best
child's hyperparameters, train, and compare their curve with the target's. An evaluator
that is significantly better hands its weights to the target (success); one that cannot
catch up stops (Section 3.2).

Order at a ready point (sync mode: all workers at once; async: one worker): evaluator
checks first, then exploit-and-explore inside every sub-population, then free evaluators
are assigned. Checking evaluators first lets a target that just received an evaluator's
weights be ranked on the copied point (SPEC "Weight copies").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from firepbt.algorithms.base import Assign, Command, CopyWeights, Free, SetHparams, Worker
from firepbt.algorithms.pbt import PBT
from firepbt.core.curves import best_score_diff, binom_test
from firepbt.core.space import SearchSpace


class FirePBT(PBT):
    """FIRE PBT with ``len(subpopulations) >= 2`` sub-populations and evaluators."""

    def __init__(
        self,
        space: SearchSpace,
        rng: np.random.Generator,
        *,
        subpopulations: Sequence[int],
        evaluators: int,
        steps: int,
        max_eval_steps: int,
        p_stat: float = 0.01,
        min_steps_before_eval: Sequence[int] | None = None,
        truncation: float = 0.25,
        mode: str = "sync",
        smooth: bool = True,
    ) -> None:
        super().__init__(
            space, rng, subpopulations=subpopulations, truncation=truncation, mode=mode
        )
        for _ in range(evaluators):
            self.workers.append(Worker(id=len(self.workers), role="evaluator", subpop=0))
        self.steps = steps
        self.max_eval_steps = max_eval_steps
        self.p_stat = p_stat
        # min_steps_before_eval lists P_1..P_n (the P_1 entry is unused); min_steps[i] is P_i.
        mins = list(min_steps_before_eval or [0] * len(subpopulations))
        self.min_steps = [0, *mins]
        self.smooth = smooth
        #: Diagnostics of the latest evaluator checks, drained and journalled by the loop.
        self.checks: list[dict[str, Any]] = []

    def evaluators(self) -> list[Worker]:
        """The evaluator workers."""
        return [w for w in self.workers if w.role == "evaluator"]

    # -- fitness (Section 3.1.2) ---------------------------------------------------

    def fitness(self, subpop: int) -> dict[int, float]:
        if subpop == 1:
            return super().fitness(subpop)
        phi = [w for w in self.members(subpop) if w.evaluator is not None]
        curves = {
            w.id: self.floored(self.workers[w.evaluator].curve)
            for w in phi
            if w.evaluator is not None
        }
        out: dict[int, float] = {}
        for j in curves:
            out[j] = float(
                sum(
                    best_score_diff(curves[j], curves[k], smooth=self.smooth)
                    for k in curves
                    if k != j
                )
            )
        return out

    # -- events ---------------------------------------------------------------------

    def on_result(self, worker: int, step: int, score: float) -> list[Command]:
        super().on_result(worker, step, score)
        w = self.workers[worker]
        cmds: list[Command] = []
        if w.role == "evaluator" and w.parent is not None and w.diverged:
            self.free(w.id, "diverged", cmds)
            if self.mode == "async":
                self.assign_free(cmds)
        return cmds

    def on_ready(self, workers: Sequence[int]) -> list[Command]:
        cmds: list[Command] = []
        for i in sorted(workers):
            w = self.workers[i]
            if w.role == "evaluator" and w.parent is not None:
                self.check(w, cmds)
        self.exploit([i for i in workers if self.workers[i].role == "member"], cmds)
        self.assign_free(cmds)
        return cmds

    # -- evaluators (Section 3.2) ---------------------------------------------------

    def check(self, e: Worker, cmds: list[Command]) -> None:
        """Stopping and success criteria of evaluator ``e`` at a ready point."""
        assert e.target is not None
        target = self.workers[e.target]
        a, b = self.floored(e.curve), self.floored(target.curve)
        p = binom_test(a, b, smooth=self.smooth)
        diff = best_score_diff(a, b, smooth=self.smooth)
        t = e.trained
        threshold = self.p_stat + max(0.0, 1.0 - t / self.max_eval_steps)
        if diff > 0 and p is not None and p < self.p_stat:
            outcome = "success"
        elif (p is None and t > self.max_eval_steps) or (p is not None and p > threshold):
            outcome = "stop"
        else:
            outcome = "continue"
        self.checks.append(
            {
                "evaluator": e.id,
                "parent": e.parent,
                "target": e.target,
                "trained": t,
                "p": p,
                "threshold": threshold,
                "diff": diff,
                "outcome": outcome,
            }
        )
        if outcome == "success":
            tid = target.id
            cmds.append(CopyWeights(e.id, tid, "success"))
            self.apply_copy(e.id, tid)
            target.since_eval = 0
            self.free(e.id, "success", cmds)
            for other in self.evaluators():
                if other.target == tid:
                    self.free(other.id, "target_replaced", cmds)
                elif (
                    other.parent == tid
                ):  # target is itself a parent (n >= 3): its weights are gone
                    self.free(other.id, "parent_replaced", cmds)
        elif outcome == "stop":
            self.free(e.id, "stop", cmds)

    def lost(self, member: int, cmds: list[Command]) -> None:
        for e in self.evaluators():
            if e.parent == member:
                self.free(e.id, "parent_exploited", cmds)
            elif e.target == member:
                self.free(e.id, "target_exploited", cmds)

    def free(self, evaluator: int, reason: str, cmds: list[Command]) -> None:
        """Release ``evaluator`` from its parent and target, appending a :class:`Free` command."""
        e = self.workers[evaluator]
        if e.parent is not None:
            self.workers[e.parent].evaluator = None
        e.parent = e.target = None
        e.trained = 0
        cmds.append(Free(evaluator, reason))

    def assign_free(self, cmds: list[Command]) -> None:
        """Step 1-2 of the evaluator loop for every free evaluator, lowest id first."""
        for e in self.evaluators():
            if e.parent is not None:
                continue
            candidates = [
                m
                for m in self.members()
                if m.subpop >= 2
                and m.evaluator is None
                and m.latest is not None
                and not m.diverged
                and m.step < self.steps
                and m.since_eval >= self.min_steps[m.subpop]
            ]
            if not candidates:
                return  # nothing qualifies: free evaluators wait
            parent = min(candidates, key=lambda m: (-m.since_eval, m.id))
            target = self.pick_target(parent.subpop - 1)
            cmds.append(CopyWeights(parent.id, e.id, "assign"))
            self.apply_copy(parent.id, e.id)
            e.hparams = dict(target.hparams)
            cmds.append(SetHparams(e.id, e.hparams, "assign"))
            e.parent, e.target, e.trained = parent.id, target.id, 0
            parent.evaluator = e.id
            parent.since_eval = 0
            cmds.append(Assign(e.id, parent.id, target.id))

    def pick_target(self, child: int) -> Worker:
        """The highest-fitness member of ``child``; none ranked: one drawn at random."""
        fit = self.fitness(child)
        if fit:
            best = min(fit, key=lambda i: (-fit[i], i))
            return self.workers[best]
        pool = self.members(child)
        return pool[int(self.rng.integers(len(pool)))]


def max_significant_points(p_stat: float) -> int:
    """Points a section must hold beyond its start before p < p_stat is possible."""
    return math.floor(math.log2(1.0 / p_stat)) + 1
