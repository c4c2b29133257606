"""Random search, the paper's first baseline (Section 4, "RS").

Each worker samples its hyperparameters once from the prior and trains to the end,
optionally under a fixed relative schedule scaled by the sampled value (Section 4.1.1:
linear warm-up, then x0.1 decays at fixed fractions of training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from firepbt.algorithms.base import Command, Decider, Hparams, SetHparams, Worker
from firepbt.core.space import SearchSpace


@dataclass(frozen=True)
class RelativeSchedule:
    """Multiplies hyperparameter ``param`` by a warm-up ramp and step decays.

    Over a run of ``total`` steps, a chunk starting at step ``s`` trains with
    ``value * min(1, (s + chunk) / (warmup * total)) * factor ** k``, where k counts the
    fractions in ``decays`` with ``fraction * total <= s``.
    """

    param: str
    warmup: float = 0.0
    decays: tuple[float, ...] = (0.5, 0.75)
    factor: float = 0.1

    def multiplier(self, start: int, chunk: int, total: int) -> float:
        """The factor on ``param`` for a chunk of ``chunk`` steps starting at ``start``."""
        ramp = 1.0
        if self.warmup > 0:
            ramp = min(1.0, (start + chunk) / (self.warmup * total))
        k = sum(1 for d in self.decays if d * total <= start)
        return ramp * self.factor**k


class RandomSearch(Decider):
    """Sample once, train to the end; no exploit, no evaluators."""

    def __init__(
        self,
        space: SearchSpace,
        population: int,
        rng: np.random.Generator,
        *,
        steps: int,
        eval_interval: int,
        schedule: RelativeSchedule | None = None,
        mode: str = "sync",
        init_sampling: str = "iid",
    ) -> None:
        self.space = space
        self.rng = rng
        self.init_sampling = init_sampling
        self.steps = steps
        self.eval_interval = eval_interval
        self.schedule = schedule
        self.mode = mode
        self.workers = [Worker(id=i, role="member", subpop=1) for i in range(population)]
        self.base: list[Hparams] = []

    def _at(self, worker: int, start: int) -> Hparams:
        h = dict(self.base[worker])
        if self.schedule is not None:
            name = self.schedule.param
            m = self.schedule.multiplier(start, self.eval_interval, self.steps)
            h[name] = h[name] * m
        return h

    def start(self) -> list[Command]:
        if self.init_sampling == "stratified":  # a Latin hypercube over the population
            self.base = self.space.sample_stratified(len(self.workers), self.rng)
        else:
            self.base = [self.space.sample(self.rng) for _ in self.workers]
        cmds: list[Command] = []
        for w in self.workers:
            w.hparams = self._at(w.id, 0)
            cmds.append(SetHparams(w.id, w.hparams, "init"))
        return cmds

    def on_result(self, worker: int, step: int, score: float) -> list[Command]:
        super().on_result(worker, step, score)
        if self.schedule is None or step >= self.steps:
            return []
        h = self._at(worker, step)
        w = self.workers[worker]
        if h == w.hparams:
            return []
        w.hparams = h
        return [SetHparams(worker, h, "schedule")]

    def on_ready(self, workers: Sequence[int]) -> list[Command]:
        return []
