"""Population Based Training (Jaderberg et al. 2017; paper Section 2; SPEC "PBT inside
every sub-population").

Truncation selection inside each sub-population: ready members ranked in the bottom
fraction copy the weights and hyperparameters of a member drawn uniformly from the top
fraction, then explore. Plain PBT is this decider with a single greedy sub-population;
FIRE PBT (:mod:`firepbt.algorithms.fire`) adds parent sub-populations and evaluators.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from firepbt.algorithms.base import Command, CopyWeights, Decider, Hparams, SetHparams, Worker
from firepbt.core.space import SearchSpace


def truncation(fitness: dict[int, float], fraction: float) -> tuple[list[int], list[int]]:
    """(top, bottom) member ids of a ranked sub-population.

    With m ranked members, k = floor(fraction * m) lose, at least 1 when m >= 4; fewer
    than 4 ranked members: nobody is exploited. Ties break by member id (lower id ranks
    higher).
    """
    ranked = sorted(fitness, key=lambda i: (-fitness[i], i))
    m = len(ranked)
    if m < 4:
        return [], []
    k = max(1, math.floor(fraction * m))
    return ranked[:k], ranked[m - k :]


class PBT(Decider):
    """Truncation-selection PBT over one or more sub-populations of members."""

    init_sampling: str = "iid"  # class default: deciders pickled before the setting existed

    def __init__(
        self,
        space: SearchSpace,
        rng: np.random.Generator,
        *,
        subpopulations: Sequence[int],
        truncation: float = 0.25,
        mode: str = "sync",
        init_sampling: str = "iid",
    ) -> None:
        self.space = space
        self.rng = rng
        self.fraction = truncation
        self.mode = mode
        self.init_sampling = init_sampling
        self.workers = []
        for i, size in enumerate(subpopulations, start=1):
            for _ in range(size):
                self.workers.append(Worker(id=len(self.workers), role="member", subpop=i))
        self.n_subpops = len(subpopulations)

    def start(self) -> list[Command]:
        """Every member's initial hyperparameters: i.i.d. from the initial distribution
        (the paper, Section 4.1.1: each worker samples its initial value log-uniformly),
        or with ``init_sampling = "stratified"`` a Latin hypercube per sub-population
        (:meth:`SearchSpace.sample_stratified`; each draw is still distributed as the
        prior), so that no sub-population starts entirely in one region of the prior
        (FIRE PBT's default since issue 11's fifth pass; README "Departures from the
        paper")."""
        cmds: list[Command] = []
        if self.init_sampling == "stratified":
            for i in range(1, self.n_subpops + 1):
                group = self.members(i)
                draws = self.space.sample_stratified(len(group), self.rng)
                for w, h in zip(group, draws, strict=True):
                    w.hparams = h
        else:
            for w in self.members():
                w.hparams = self.space.sample(self.rng)
        for w in self.members():
            cmds.append(SetHparams(w.id, w.hparams, "init"))
        return cmds

    def fitness(self, subpop: int) -> dict[int, float]:
        """Greedy fitness: the latest Q (non-finite counts as -inf); no score, no fitness."""
        out = {}
        for w in self.members(subpop):
            if w.latest is not None:
                out[w.id] = w.latest if math.isfinite(w.latest) else -math.inf
        return out

    def on_ready(self, workers: Sequence[int]) -> list[Command]:
        cmds: list[Command] = []
        self.exploit(workers, cmds)
        return cmds

    def exploit(self, ready: Sequence[int], cmds: list[Command]) -> None:
        """Exploit-and-explore for the ready members of every sub-population."""
        ready_set = set(ready)
        for subpop in range(1, self.n_subpops + 1):
            group = self.members(subpop)
            here = [w for w in group if w.id in ready_set]
            if not here:
                continue
            top, bottom = truncation(self.fitness(subpop), self.fraction)
            self.exploit_group(here, group, bottom, self.sources(subpop, top), cmds)

    def exploit_group(
        self,
        ready: list[Worker],
        group: list[Worker],
        bottom: list[int],
        sources: list[int],
        cmds: list[Command],
    ) -> None:
        """The exploit-and-explore of one ranked ``group``: each of its ``ready`` members
        that diverged, or ranks in ``bottom`` (unless protected), copies one of
        ``sources`` drawn at random, or any healthy peer of ``group`` if none is usable."""
        losers = sorted(
            {w.id for w in ready if w.diverged or (w.id in bottom and not self.protected(w))}
        )
        for loser in losers:
            pool = [i for i in sources if i != loser and not self.workers[i].diverged]
            if not pool:  # a diverged member outside the ranking: any healthy peer
                pool = [
                    w.id for w in group if w.id != loser and w.latest is not None and not w.diverged
                ]
            if not pool:
                continue
            src = pool[int(self.rng.integers(len(pool)))]
            self.exploit_one(src, loser, cmds)

    def exploit_one(self, src: int, dst: int, cmds: list[Command]) -> None:
        """``dst`` copies ``src``'s weights and hyperparameters, then explores (SPEC "PBT")."""
        d = self.workers[dst]
        base = self.inherited(src, dst)  # before the copy replaces dst's state
        cmds.append(CopyWeights(src, dst, "exploit"))
        self.apply_copy(src, dst)
        d.hparams = self.explored(d, base)
        d.since_eval = 0
        cmds.append(SetHparams(dst, d.hparams, "explore"))
        self.lost(dst, cmds)

    def inherited(self, src: int, dst: int) -> Hparams:
        """The hyperparameters loser ``dst`` explores from (a hook for FIRE PBT; PBT:
        the winner ``src``'s)."""
        return self.workers[src].hparams

    def sources(self, subpop: int, top: list[int]) -> list[int]:
        """Whom the losers of ``subpop`` copy from (a hook for FIRE PBT; PBT: its top)."""
        return top

    def explored(self, dst: Worker, hparams: Hparams) -> Hparams:
        """The explore step for ``dst`` from the copied ``hparams`` (a hook for FIRE PBT)."""
        return self.space.explore(hparams, self.rng)

    def protected(self, member: Worker) -> bool:
        """Whether ``member`` may not lose an evolution event now (a hook; PBT: never)."""
        return False

    def lost(self, member: int, cmds: list[Command]) -> None:
        """Hook: ``member`` just lost an evolution event (FIRE frees its evaluators)."""
