"""The run-level numbers an experiment tracker shows beside the workers' curves.

Both the W&B and the MLflow logger keep them from the same events: each worker's
trained steps (the x axis of its curve), the furthest network step, the best score so
far, the exploit and evaluator-success counts, and every weight copy.
"""

from __future__ import annotations

from typing import Any

from firepbt.runner.best import BestSoFar
from firepbt.runner.callbacks import Callback, RunInfo
from firepbt.runner.events import Copy, Result, WorkerRole

COPY_COLUMNS = ("step", "reason", "src", "dst", "src_net", "net")


class RunTally(Callback):
    """A callback base that counts what a logger's run-level view shows."""

    def __init__(self) -> None:
        self.sign = 1.0  # -1 when the direction is "min"
        self.roles: tuple[WorkerRole, ...] = ()
        self.trained: dict[int, int] = {}
        self.population_step = 0
        self.picker = BestSoFar()
        self.counts = {"exploit": 0, "success": 0}
        self.copies: list[Copy] = []

    def begin(self, info: RunInfo) -> None:
        """Take the run's direction, roles and best rule (first thing in
        ``on_run_start``)."""
        cfg = info.config
        self.roles = info.roles
        self.sign = -1.0 if cfg.direction == "min" else 1.0
        self.picker = BestSoFar(cfg.best, cfg.steps, cfg.direction)

    @property
    def best(self) -> float | None:
        """``best_Q``: the run's best score so far by its ``best`` rule, as the progress
        lines and ``result.json`` pick it (``runner/best.py: BestSoFar``)."""
        got = self.picker.chosen()
        return None if got is None else got[0]

    def track(self, ev: Any) -> bool:
        """Update the counters from ``ev``; True when the run-level numbers changed."""
        if isinstance(ev, Result):
            self.trained[ev.worker] = self.trained.get(ev.worker, 0) + ev.step - ev.start
            self.population_step = max(self.population_step, ev.step)
            role = self.roles[ev.worker] if ev.worker < len(self.roles) else WorkerRole("", 0)
            return self.picker.offer(ev.score, role.role, role.subpop, ev.step)
        elif isinstance(ev, Copy):
            self.copies.append(ev)
            if ev.reason in self.counts:
                self.counts[ev.reason] += 1
                return True
        return False

    def copy_rows(self) -> list[list[Any]]:
        """Every weight copy so far, one row of :data:`COPY_COLUMNS` each."""
        return [[getattr(c, name) for name in COPY_COLUMNS] for c in self.copies]
