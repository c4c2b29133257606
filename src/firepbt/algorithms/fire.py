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

Departures from the paper (issue 11). Each is a named setting of ``[algorithm]`` and one
small method below, so that the paper's algorithm stays readable on its own. Two are on
by default, in this class and in the config (:class:`firepbt.config.FireSettings`):
``init_sampling = "stratified"`` (:meth:`PBT.start <firepbt.algorithms.pbt.PBT.start>`:
each sub-population's initial hyperparameters are a Latin hypercube of the initial
distribution, where the paper, Section 4.1.1, samples each worker independently), the
one departure that helped or was neutral on every synchronous benchmark (fifth pass, 20
seeds; ``benchmarks/RESULTS.md``), and ``phi = "checked"`` (below), which changes no
synchronous decision. With ``init_sampling = "iid"``, ``phi = "assigned"`` and the
others at their defaults (off) the decisions and the random stream are the paper's
(``parent_resample = 0.25`` was the config default after the first 5-seed sweep):

- ``parent_resample`` (:meth:`FirePBT.explored`): a parent member's explore redraws its
  hyperparameters from the prior with this probability. A parent sub-population that
  started in a poor region (NQM seed 1: 7 of 8 learning rates below 0.09) otherwise
  climbs out only by factors of 2 per exploit.
- ``reseed_after`` (:meth:`FirePBT.reseed_stalled`): a parent sub-population that has
  moved no weights into its child for this many steps copies the child's best networks
  into its bottom quarter (keeping its own hyperparameters).
- ``eval_patience`` (:meth:`FirePBT.closing`): without overlap, an evaluator is kept
  past ``max_eval_steps`` (up to ``eval_patience`` times it) while its curve closes the
  gap to the target's start fast enough.
- ``protect_steps`` (:meth:`FirePBT.protected`): a member that received an evaluator's
  weights cannot lose an evolution event for this many steps.
- ``greedy_sources`` (:meth:`FirePBT.sources`): P_1's losers may also copy parent
  members whose Q is as good as P_1's top quarter (``greedy_bar = "top"``) or its best
  member (``"best"``); with ``greedy_smoothed`` a parent member is judged by its
  GP-smoothed Q, not by one reading.
- ``eval_stop`` (:meth:`FirePBT.assign_free`): no evaluator is assigned to a parent in
  this last fraction of the budget, so that the networks P_1 received last have time to
  anneal under its greedy hyperparameters before the end.
- ``greedy_finish`` (:meth:`FirePBT.exploit`): in this last fraction of the budget every
  member, whatever its sub-population, is ranked by Q in one truncation selection
  (one greedy PBT): an improvement rate measured now can no longer pay off before the
  end, and only the final score counts.
- ``parent_perturb_power`` (:meth:`FirePBT.explored`): a parent member's explore raises
  each ``perturb`` factor to this power (2: [0.25, 0.64, 1.56, 4]), so a parent
  sub-population moves its hyperparameters faster (the fourth pass found the parents'
  learning rates too low in the first half of NQM's training; 2 helps there and costs
  on PPO).
- ``parent_freeze`` (:meth:`FirePBT.protected`): in this last fraction of the budget no
  parent member loses an evolution event (a diverged one still does): their late
  selection, measured with evaluators at P_1's small late learning rates, moves the
  parents' rates down.
- ``rank_freed_parents`` (:meth:`FirePBT.fitness`): a parent whose evaluator stopped or
  succeeded at this ready point's checks is still in Φ for this ready point's
  exploit-and-explore, on the evaluator's final curve (with the checks first, Φ is often
  below the 4 members truncation needs, and the parents rarely exploit).
- ``phi`` (:meth:`FirePBT.in_phi`; ``"checked"``, a default since the twelfth pass, as
  it changes no synchronous decision): a parent member is ranked for its evolution only
  once its evaluator has been checked, as at a synchronous ready point, whose checks
  come before its rankings. Asynchronously the paper's Φ taken literally ranks parents
  on evaluator curves a point or two long, and FIRE PBT lost a third of its NQM gain.
- ``parent_own_hparams`` (:meth:`FirePBT.inherited`): a parent member that loses an
  evolution event copies the winner's weights but explores from its own hyperparameters
  (a diverged one still takes the winner's): the parents' fitness ranks weights, and
  with the hyperparameters it passed on the weights' low rates (ninth pass).

Which of them help, on which benchmark, is measured in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from firepbt.algorithms.base import (
    Assign,
    Command,
    CopyWeights,
    Free,
    SetHparams,
    Worker,
)
from firepbt.algorithms.fire_departures import FireDepartures
from firepbt.core.curves import (
    Curve,
    best_score_diff,
    binom_test,
    cancel_fits,
    submit_fits,
)
from firepbt.core.pairwise import pairwise_best_score_diff
from firepbt.core.space import SearchSpace


class FirePBT(FireDepartures):
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
        parent_resample: float = 0.0,
        reseed_after: int = 0,
        eval_patience: float = 1.0,
        protect_steps: int = 0,
        greedy_sources: bool = False,
        greedy_smoothed: bool = False,
        greedy_bar: str = "top",
        greedy_finish: float = 0.0,
        eval_stop: float = 0.0,
        parent_perturb_power: float = 1.0,
        parent_freeze: float = 0.0,
        rank_freed_parents: bool = False,
        parent_own_hparams: bool = False,
        phi: str = "checked",
        gp_refit: float = 0.0,
        gp_workers: int = 1,
        init_sampling: str = "stratified",
    ) -> None:
        super().__init__(
            space,
            rng,
            subpopulations=subpopulations,
            truncation=truncation,
            mode=mode,
            init_sampling=init_sampling,
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
        # Departures from the paper (issue 11; SPEC "FIRE PBT"), each off at its paper value.
        self.parent_resample = parent_resample
        self.reseed_after = reseed_after
        self.eval_patience = eval_patience
        self.protect_steps = protect_steps
        self.greedy_sources = greedy_sources
        self.greedy_smoothed = greedy_smoothed
        self.greedy_bar = greedy_bar
        self.greedy_finish = greedy_finish
        self.eval_stop = eval_stop
        self.parent_perturb_power = parent_perturb_power
        self.parent_freeze = parent_freeze
        self.rank_freed_parents = rank_freed_parents
        self.parent_own_hparams = parent_own_hparams
        self.phi = phi
        self._freed_curves: dict[int, Curve] = {}
        self._last_link = [0] * (
            len(subpopulations) + 1
        )  # per parent P_i: step of last success/reseed
        self._protected_until: dict[int, int] = {}
        #: Curve.gp_refit of every curve compared (0: exact GP fits; see core/curves.py).
        self.gp_refit = gp_refit
        #: processes for the GP fits of a sync ready point (1: in the controller; see
        #: core/curves.fit_in_parallel: the same fits, bit for bit, so the same decisions)
        self.gp_workers = gp_workers
        #: Diagnostics of the latest evaluator checks, drained and journalled by the loop.
        self.checks: list[dict[str, Any]] = []
        self._pair_cache: dict[int, _PairCache] = {}

    def __getstate__(self) -> dict[str, Any]:
        # The pair cache is derived data (rebuilt on the next fitness call): checkpoints
        # leave it out, and a resumed run computes the same numbers without it.
        state = self.__dict__.copy()
        state["_pair_cache"] = {}
        return state

    def evaluators(self) -> list[Worker]:
        """The evaluator workers."""
        return [w for w in self.workers if w.role == "evaluator"]

    # -- fitness (Section 3.1.2) ---------------------------------------------------

    def fitness(self, subpop: int) -> dict[int, float]:
        """The fitness that ranks ``subpop`` for exploit-and-explore."""
        return self._fitness(subpop, evolving=True)

    def _fitness(self, subpop: int, *, evolving: bool) -> dict[int, float]:
        if subpop == 1:
            return super().fitness(subpop)
        # Φ: the members with an evaluator now (and, with rank_freed_parents, those whose
        # evaluator this ready point's checks freed, on its final curve; with phi =
        # "checked", for their evolution, only those whose evaluator has been checked)
        freed = self._freed_curves if self.rank_freed_parents else {}
        phi = [
            w
            for w in self.members(subpop)
            if (w.evaluator is not None and (not evolving or self.in_phi(w))) or w.id in freed
        ]
        ids = [w.id for w in phi]
        curves = [
            self.floored(
                self.workers[w.evaluator].curve if w.evaluator is not None else freed[w.id]
            )
            for w in phi
        ]
        diffs = self._pair_diffs(subpop, ids, curves)
        cache = self._pair_cache[subpop]
        if cache.fitness is None:
            # The sum of SPEC "Parent fitness", term by term in member order as the plain
            # Python sum over pairs would add them, so the ranking is the same to the last bit.
            rows = diffs.tolist()
            cache.fitness = {
                j: float(sum(rows[x][:x] + rows[x][x + 1 :])) for x, j in enumerate(ids)
            }
        return dict(cache.fitness)

    def _pair_diffs(self, subpop: int, ids: list[int], curves: list[Curve]) -> np.ndarray:
        """diffs[x, y] = best_score_diff(curves[x], curves[y]), from the previous call's
        matrix where both curves are unchanged (the same object, no new point), so only
        the pairs touching a curve that changed are computed (vectorised), each once: the
        other half is its negation (best_score_diff is antisymmetric, exactly)."""
        m = len(ids)
        old = self._pair_cache.get(subpop)
        if (
            old is not None
            and old.ids == ids
            and all(a is b for a, b in zip(old.curves, curves, strict=True))
            and old.lens == [len(c) for c in curves]
        ):
            return old.diffs  # nothing changed since the last call (its fitness is kept)
        diffs = np.zeros((m, m))
        fresh = np.ones(m, dtype=bool)
        if old is not None:
            where = {i: x for x, i in enumerate(old.ids)}
            keep = [
                (x, where[i])
                for x, i in enumerate(ids)
                if i in where
                and old.curves[where[i]] is curves[x]
                and old.lens[where[i]] == len(curves[x])
            ]
            if keep:
                new_ix, old_ix = (np.array(v, dtype=np.int64) for v in zip(*keep, strict=True))
                diffs[np.ix_(new_ix, new_ix)] = old.diffs[np.ix_(old_ix, old_ix)]
                fresh[new_ix] = False
        upper = np.triu(np.ones((m, m), dtype=bool), k=1)
        upper &= fresh[:, None] | fresh[None, :]
        pairs = np.argwhere(upper)
        if len(pairs):
            v = pairwise_best_score_diff(curves, pairs, smooth=self.smooth)
            diffs[pairs[:, 0], pairs[:, 1]] = v
            diffs[pairs[:, 1], pairs[:, 0]] = -v + 0.0
        self._pair_cache[subpop] = _PairCache(ids, curves, [len(c) for c in curves], diffs)
        return diffs

    # -- events ---------------------------------------------------------------------

    def on_result(self, worker: int, step: int, score: float) -> list[Command]:
        super().on_result(worker, step, score)
        w = self.workers[worker]
        w.curve.gp_refit = self.gp_refit
        cmds: list[Command] = []
        if w.role == "evaluator" and w.parent is not None and w.diverged:
            self.free(w.id, "diverged", cmds)
            if self.mode == "async":
                self.assign_free(cmds)
        return cmds

    def on_ready(self, workers: Sequence[int]) -> list[Command]:
        cmds: list[Command] = []
        submitted: list[Curve] = []
        if self.gp_workers > 1 and self.smooth and self.mode == "sync":
            # the curves this round compares, in the order the checks need them: each
            # working evaluator's and its target's (an evaluator freed by an earlier
            # success in this round is never checked: free() cancels its fit)
            curves: list[Curve] = []
            for w in sorted(self.workers, key=lambda w: w.id):
                if w.role == "evaluator" and w.parent is not None and w.target is not None:
                    curves += [w.curve, self.workers[w.target].curve]
            submitted = submit_fits(curves, self.gp_workers)
        try:
            return self._on_ready(workers, cmds)
        finally:
            cancel_fits(submitted)  # fits of curves no check needed after all

    def _on_ready(self, workers: Sequence[int], cmds: list[Command]) -> list[Command]:
        for i in sorted(workers):
            w = self.workers[i]
            if w.role == "evaluator" and w.parent is not None:
                self.check(w, cmds)
        ready_members = [i for i in workers if self.workers[i].role == "member"]
        if self.reseed_after > 0:
            self.reseed_stalled(ready_members, cmds)
        self.exploit(ready_members, cmds)
        self._freed_curves = {}
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
        e.checks += 1
        threshold = self.p_stat + max(0.0, 1.0 - t / self.max_eval_steps)
        if diff > 0 and p is not None and p < self.p_stat:
            outcome = "success"
        elif (p is None and t > self.max_eval_steps and not self.closing(a, b, t)) or (
            p is not None and p > threshold
        ):
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
            parent_subpop = target.subpop + 1
            self._last_link[parent_subpop] = max(self._last_link[parent_subpop], target.step)
            if self.protect_steps > 0:
                self._protected_until[tid] = target.step + self.protect_steps
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
        if self.rank_freed_parents and reason in ("stop", "success") and e.parent is not None:
            self._freed_curves[e.parent] = e.curve  # ranked at this ready point still
        if self.gp_workers > 1:
            cancel_fits([e.curve])  # its curve is compared no more (if not started: no cost)
        if e.parent is not None:
            self.workers[e.parent].evaluator = None
        e.parent = e.target = None
        e.trained = e.checks = 0
        cmds.append(Free(evaluator, reason))

    def assign_free(self, cmds: list[Command]) -> None:
        """Step 1-2 of the evaluator loop for every free evaluator, lowest id first."""
        free = [e for e in self.evaluators() if e.parent is None]
        if not free:
            return
        # The qualifying parents, gathered once: an assignment changes only the parent it
        # picks (it gains an evaluator, so it leaves the list), so each free evaluator
        # sees exactly the list a scan of every member at its turn would give.
        before = self.steps * (1.0 - self.eval_stop)  # eval_stop: none in the last part
        candidates = [
            m
            for m in self.members()
            if m.subpop >= 2
            and m.evaluator is None
            and m.latest is not None
            and not m.diverged
            and m.step < before
            and m.since_eval >= self.min_steps[m.subpop]
        ]
        # The best-ranked target of each child sub-population, kept while its fitness
        # cannot change: an assignment changes the fitness of the parent's own
        # sub-population only (its Φ gains a member), never P_1's (the latest Q).
        best: dict[int, Worker | None] = {}
        for e in free:
            if not candidates:
                return  # nothing qualifies: free evaluators wait
            parent = min(candidates, key=lambda m: (-m.since_eval, m.id))
            candidates.remove(parent)
            child = parent.subpop - 1
            if child not in best:
                best[child] = self.ranked_target(child)
            target = best[child] or self.pick_target(child)
            best.pop(parent.subpop, None)
            cmds.append(CopyWeights(parent.id, e.id, "assign"))
            self.apply_copy(parent.id, e.id)
            e.hparams = dict(target.hparams)
            cmds.append(SetHparams(e.id, e.hparams, "assign"))
            e.parent, e.target, e.trained, e.checks = parent.id, target.id, 0, 0
            parent.evaluator = e.id
            parent.since_eval = 0
            cmds.append(Assign(e.id, parent.id, target.id))

    def ranked_target(self, child: int) -> Worker | None:
        """The highest-fitness member of ``child`` (ties: lowest id); None if none ranked."""
        fit = self._fitness(child, evolving=False)
        if fit:
            best = min(fit, key=lambda i: (-fit[i], i))
            return self.workers[best]
        return None

    def pick_target(self, child: int) -> Worker:
        """The highest-fitness member of ``child``; none ranked: one drawn at random."""
        target = self.ranked_target(child)
        if target is not None:
            return target
        pool = self.members(child)
        return pool[int(self.rng.integers(len(pool)))]


@dataclass
class _PairCache:
    """The pair matrix of one parent sub-population at the latest fitness call."""

    ids: list[int]
    curves: list[Curve]  # held, so an unchanged curve is recognised by identity
    lens: list[int]
    diffs: np.ndarray
    fitness: dict[int, float] | None = None  # the sums, once computed


def max_significant_points(p_stat: float) -> int:
    """Points a section must hold beyond its start before p < p_stat is possible."""
    return math.floor(math.log2(1.0 / p_stat)) + 1
