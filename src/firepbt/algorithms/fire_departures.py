"""FIRE PBT's departures from the paper (issue 11), each a named ``[algorithm]`` setting.

With every setting at its paper value (``parent_resample = 0``, ``greedy_sources =
false``, ``greedy_smoothed = false`` and ``greedy_bar = "top"``, ``protect_steps = 0``,
``eval_patience = 1``, ``reseed_after = 0``, ``greedy_finish = 0``, ``eval_stop = 0``, ``parent_perturb_power =
1``, ``parent_freeze = 0``, ``rank_freed_parents = false``, ``parent_own_hparams =
false``, ``phi = "assigned"`` (``"checked"`` is a default since the twelfth pass; it
changes no synchronous decision), and ``init_sampling = "iid"``, the ``[algorithm]``
departure on by default since the fifth pass; the other default departures, ``best =
"final"`` and ``end = "p1"``, are the runner's: ``runner/best.py``, ``runner/drivers.py``) each hook
here does what the paper does, and :class:`~firepbt.algorithms.fire.FirePBT` is the
paper's algorithm (``tests/test_fire_departures.py``). ``init_sampling`` lives in
:meth:`PBT.start <firepbt.algorithms.pbt.PBT.start>`, as PBT and random search take it too. Why each exists and what the seed
sweeps measured: README "Departures from the paper", ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from firepbt.algorithms.base import Command, CopyWeights, Hparams, Worker
from firepbt.algorithms.pbt import PBT, truncation
from firepbt.core.curves import Curve


class FireDepartures(PBT):
    """The hooks of :class:`~firepbt.algorithms.pbt.PBT` that FIRE PBT's named settings
    change, and the reseed of a stalled parent sub-population (a base of ``FirePBT``)."""

    parent_resample: float
    greedy_sources: bool
    greedy_smoothed: bool = False  # class default: deciders pickled before it existed
    greedy_bar: str = "top"  # class default: deciders pickled before the setting existed
    eval_stop: float = 0.0  # class default: deciders pickled before the setting existed
    parent_perturb_power: float = 1.0  # class defaults: the same, for the third pass's
    parent_freeze: float = 0.0
    rank_freed_parents: bool = False
    parent_own_hparams: bool = False  # class default: deciders pickled before it existed
    greedy_finish: float = 0.0  # class default: deciders pickled before the setting existed
    phi: str = "assigned"  # class default: deciders pickled before the setting existed
    steps: int
    protect_steps: int
    eval_patience: float
    reseed_after: int
    max_eval_steps: int
    _last_link: list[int]
    _protected_until: dict[int, int]

    def lost(self, member: int, cmds: list[Command]) -> None:
        """A member lost an evolution event (FIRE PBT frees its evaluators)."""
        raise NotImplementedError

    def finishing(self, ready: Sequence[int]) -> bool:
        """``greedy_finish``: the ready members have reached the last fraction
        ``greedy_finish`` of the budget."""
        if self.greedy_finish <= 0 or not ready:
            return False
        return max(self.workers[i].step for i in ready) >= self._finish_step()

    def _finish_step(self) -> float:
        return self.steps * (1.0 - self.greedy_finish)

    def exploit(self, ready: Sequence[int], cmds: list[Command]) -> None:
        """``greedy_finish``: near the end, one truncation selection by Q over the members
        of every sub-population (PBT over all of them); before it, and with the setting
        off, each sub-population by its own fitness (the paper)."""
        if not self.finishing(ready):
            super().exploit(ready, cmds)
            return
        everyone = self.members()
        top, bottom = truncation(
            {w.id: self._q(w) for w in everyone if w.latest is not None}, self.fraction
        )
        ready_set = set(ready)
        self.exploit_group([w for w in everyone if w.id in ready_set], everyone, bottom, top, cmds)

    def explored(self, dst: Worker, hparams: Hparams) -> Hparams:
        """``parent_resample``: a parent member's explore draws afresh from the prior with
        this probability (diversity where a parent sub-population has converged on a
        poor region). P_1 and ``parent_resample = 0`` explore as the paper does, and so
        does every member in the ``greedy_finish`` phase (there only Q counts)."""
        finishing = self.greedy_finish > 0 and dst.step >= self._finish_step()
        if dst.subpop >= 2 and self.parent_resample > 0 and not finishing:
            if self.rng.random() < self.parent_resample:
                return self.space.sample(self.rng)
        if dst.subpop >= 2 and self.parent_perturb_power != 1.0 and not finishing:
            # parent_perturb_power: the same draws, each factor raised to the power
            return self.space.explore(hparams, self.rng, self.parent_perturb_power)
        return super().explored(dst, hparams)

    def inherited(self, src: int, dst: int) -> Hparams:
        """``parent_own_hparams``: a parent member that loses copies the winner's weights
        and explores from its *own* hyperparameters. The parents' fitness ranks weights
        (their improvement under the child's hyperparameters), and copying the winner's
        hyperparameters with them pulled the parents' rates down on every benchmark but
        MNIST-1D (``benchmarks/parents.py``). P_1, a diverged loser (its own rates
        diverged) and the setting off: the paper's copy of both."""
        d = self.workers[dst]
        if self.parent_own_hparams and d.subpop >= 2 and not d.diverged:
            return dict(d.hparams)
        return super().inherited(src, dst)

    def sources(self, subpop: int, top: list[int]) -> list[int]:
        """``greedy_sources``: P_1's losers may also copy (weights and hyperparameters,
        then explore) a member of any parent sub-population whose Q reaches the bar
        ``greedy_bar`` sets (:meth:`greedy_threshold`). Where greed is right the parents'
        networks are good by Q too and P_1 ranks all the workers' networks, as PBT does;
        where it is not (a parent trains at higher learning rates and scores worse now)
        nothing changes. ``greedy_smoothed``: a parent member qualifies on the GP
        posterior mean of its curve at its latest point instead (noisy Q: one lucky
        reading is not enough).
        """
        if subpop != 1 or not self.greedy_sources or not top:
            return top
        bar = self.greedy_threshold(top)
        extra = [
            w.id
            for w in self.members()
            if w.subpop >= 2 and math.isfinite(self._q(w)) and self._q(w) >= bar
        ]
        if self.greedy_smoothed:
            # greedy_smoothed: a parent member passes on its GP-smoothed latest Q (SPEC
            # "Smoothing", the evaluator checks' smoothing), not on one noisy reading;
            # the bar stays P_1's raw Q, itself the top of noisy readings
            extra = [i for i in extra if float(self.workers[i].curve.smoothed()[-1]) >= bar]
        return [*top, *extra]

    def greedy_threshold(self, top: list[int]) -> float:
        """The Q a parent member needs to be one of P_1's sources (``greedy_bar``):

        - ``"top"``: that of P_1's worst top member (the sixth pass);
        - ``"best"``: that of P_1's best member: only a parent network better than every
          one of P_1's (the ninth pass; at 50 workers "top" let 19.5 parent networks per
          run into P_1 and cost there, "best" 10.8);
        - ``"union"``: P_1's and the parents' members ranked together, the worst of that
          ranking's top fraction (never below "top").
        """
        qs = [self._q(self.workers[i]) for i in top]
        if self.greedy_bar == "best":
            return max(qs)
        bar = min(qs)
        if self.greedy_bar == "union":
            pool = {w.id: self._q(w) for w in self.members() if math.isfinite(self._q(w))}
            union_top, _ = truncation(pool, self.fraction)
            if union_top:
                bar = max(bar, min(pool[i] for i in union_top))
        return bar

    def in_phi(self, member: Worker) -> bool:
        """Whether parent ``member``, which has an evaluator, is ranked in its
        sub-population's exploit-and-explore (paper Section 3.1.2: Φ, the members with an
        evaluator now). ``phi = "checked"``: only once its evaluator has been checked, i.e.
        has trained a ready interval and compared its curve with the target's. That is the
        Φ a synchronous ready point ranks (its checks come first and its assignments last,
        so every evaluator then has been checked): the same decisions there. Asynchronously
        a ready parent is otherwise ranked against evaluators assigned moments ago, whose
        curves hold a point or two; the parents then evolve about five times as often as
        synchronously, their rates fall, and FIRE PBT loses a third of its NQM gain
        (issue 11, twelfth pass). The choice of an evaluator's target among the members of
        a middle sub-population (three or more) keeps the paper's Φ."""
        assert member.evaluator is not None
        return self.phi == "assigned" or self.workers[member.evaluator].checks > 0

    def protected(self, member: Worker) -> bool:
        """``protect_steps``: a member that received an evaluator's weights does not lose
        an evolution event until it has trained this many steps on them.
        ``parent_freeze``: in the last fraction ``parent_freeze`` of the budget no parent
        member does (a diverged one still copies: :meth:`exploit_group`)."""
        if (
            self.parent_freeze > 0
            and member.subpop >= 2
            and member.step >= self.steps * (1.0 - self.parent_freeze)
        ):
            return True
        until = self._protected_until.get(member.id)
        if until is None:
            return False
        if member.step >= until:
            del self._protected_until[member.id]
            return False
        return True

    def closing(self, a: Curve, b: Curve, t: int) -> bool:
        """``eval_patience``: with no overlap after ``max_eval_steps``, keep the evaluator
        (curve ``a``) while the lower-starting curve is closing the gap fast enough to
        reach the other's start before ``eval_patience * max_eval_steps``."""
        limit = self.eval_patience * self.max_eval_steps
        if self.eval_patience <= 1.0 or t > limit:
            return False
        low, high = (a, b) if a.scores[0] <= b.scores[0] else (b, a)
        x, y = low.steps, np.maximum.accumulate(low.scores)
        if len(x) < 4:
            return False
        half = x[-1] - (x[-1] - x[0]) / 2
        mid = int(np.searchsorted(x, half))
        rate = (y[-1] - y[mid]) / max(1, x[-1] - x[mid])
        gap = float(high.scores[0] - y[-1])
        if gap <= 0:
            return True  # it has reached the other's start: wait for the overlap to count
        return bool(rate > 0 and gap / rate <= limit - t)

    def reseed_stalled(self, ready: Sequence[int], cmds: list[Command]) -> None:
        """``reseed_after``: a parent sub-population P_i whose evaluators have moved no
        weights into P_{i-1} for this many steps has fallen behind its child: the bottom
        quarter of its ready members (by Q) copy the weights of the best members of
        P_{i-1} and keep their own hyperparameters, so that its evaluators overlap the
        child again. The clock restarts at every success or reseed."""
        for i in range(2, self.n_subpops + 1):
            here = [self.workers[j] for j in ready if self.workers[j].subpop == i]
            if not here:
                continue
            now = max(w.step for w in here)
            if now - self._last_link[i] < self.reseed_after:
                continue
            child = self.fitness_q(i - 1)
            if not child:
                continue
            self._last_link[i] = now
            k = max(1, math.floor(self.fraction * len(self.members(i))))
            losers = sorted(here, key=lambda w: (self._q(w), -w.id))[:k]
            sources = sorted(child, key=lambda j: (-child[j], j))[:k]
            for n, w in enumerate(losers):
                src = sources[n % len(sources)]
                cmds.append(CopyWeights(src, w.id, "reseed"))
                self.apply_copy(src, w.id)
                w.since_eval = 0
                self.lost(w.id, cmds)

    def fitness_q(self, subpop: int) -> dict[int, float]:
        """Greedy Q of the healthy members of ``subpop`` (what a reseed copies from)."""
        return {
            w.id: float(w.latest)
            for w in self.members(subpop)
            if w.latest is not None and math.isfinite(w.latest)
        }

    @staticmethod
    def _q(w: Worker) -> float:
        return w.latest if w.latest is not None and math.isfinite(w.latest) else -math.inf
