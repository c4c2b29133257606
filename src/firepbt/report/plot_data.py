"""The data of the figures, extracted from a run's journal (pure; no matplotlib).

:func:`best_curve` (Figure 4b), :func:`hparam_bands` (Figure 4a), :func:`best_schedule`
(Figure 1) and :func:`best_result` read ``events.jsonl`` alone, so any run can be
plotted, finished or not; :mod:`firepbt.report.plots` draws them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from firepbt.runner.best import BestSoFar
from firepbt.runner.journal import read_events
from firepbt.runner.lineage import Lineage

__all__ = ["Events", "best_curve", "best_result", "best_schedule", "hparam_bands", "role_label"]

Events = Sequence[Mapping[str, Any]]


def _events(run: str | Path | Events) -> Iterable[Mapping[str, Any]]:
    """The events of a run: streamed from the journal (never all in memory), or as given."""
    return read_events(run) if isinstance(run, str | Path) else run


def _better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "max" else a < b


def role_label(sub: int, algorithm: str) -> str:
    """How a group of workers is named in figures: FIRE's sub-populations are P1 (trained
    to the end, SPEC "Sub-populations"), P2, ...; PBT and random search have one
    population; sub-population 0 stands for FIRE's evaluators."""
    if sub == 0:
        return "evaluators"
    if algorithm == "fire":
        return f"P{sub}"
    return "random search" if algorithm == "random" else "population"


class _Scan:
    """Everything the figures need, gathered in one pass over the journal.

    A run of 10^6 events is read line by line (issue 12): only the results of the
    extraction are kept, never the events themselves.
    """

    def __init__(self) -> None:
        self.direction = "max"
        self.picker = BestSoFar()  # the config's best rule (SPEC "The best network")
        self.steps = 0
        self.xs: list[int] = []
        self.ys: list[float] = []
        self.best_score = math.nan
        self.front = 0
        self.roles: list[tuple[str, int]] = []
        self.names: list[str] = []
        self.values: dict[tuple[int, str], dict[int, list[float]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.current: dict[int, dict[str, Any]] = {}
        self.successes: list[dict[str, Any]] = []
        self.lineage = Lineage()
        self.space: dict[str, dict[str, Any]] = {}  # each hyperparameter's kind, bounds, ...
        self.algorithm = ""

    def feed(self, events: Iterable[Mapping[str, Any]]) -> _Scan:
        for ev in events:
            kind = ev.get("ev")
            if kind == "result":
                self._result(ev)
            elif kind == "copy":
                new = self.lineage.fork(int(ev["src_net"]), int(ev["step"]))
                if new != ev["net"]:
                    raise ValueError(f"journal: copy creates net {ev['net']}, expected {new}")
                if ev.get("reason") == "success":
                    dst = int(ev["dst"])
                    self.successes.append(
                        {
                            "step": int(ev["step"]),
                            "target": dst,
                            "hparams": dict(self.current.get(dst, {})),
                        }
                    )
            elif kind == "start":
                self.direction = str(ev["config"].get("direction", "max"))
                # journals from before the setting existed used the paper's rule
                rule = str(ev["config"].get("best", "highest"))
                self.steps = int(ev["config"].get("steps", 0))
                self.picker = BestSoFar(rule, self.steps, self.direction)
                self.roles = [(str(r), int(s or 0)) for r, s in ev["roles"]]
                self.space = dict(ev["config"]["space"])
                self.names = list(self.space)
                self.algorithm = str(ev["config"].get("algorithm", {}).get("name", ""))
                self.lineage = Lineage(int(ev["workers"]))
        return self

    def _result(self, ev: Mapping[str, Any]) -> None:
        score = ev.get("score")
        w = int(ev["worker"])
        role, sub = self.roles[w]
        self.picker.offer(score, role, sub, int(ev["step"]), ev)
        # best score so far against the furthest step any worker has reached
        self.front = max(self.front, int(ev["step"]))
        if score is not None and (
            math.isnan(self.best_score) or _better(score, self.best_score, self.direction)
        ):
            self.best_score = float(score)
        if not math.isnan(self.best_score):
            if self.xs and self.xs[-1] == self.front:
                self.ys[-1] = self.best_score
            else:
                self.xs.append(self.front)
                self.ys.append(self.best_score)
        self.current[w] = ev["hparams"]
        band = sub if role == "member" else 0  # evaluators: one band of their own
        for name in self.names:
            v = _numeric(ev["hparams"].get(name), self.space.get(name, {}))
            if v is not None:
                self.values[(band, name)][int(ev["step"])].append(v)
        self.lineage.train(int(ev["net"]), int(ev["start"]), int(ev["step"]), ev["hparams"])

    def chosen(self) -> Mapping[str, Any] | None:
        """The best network's result event, as :func:`firepbt.runner.best.chosen` picks it."""
        got = self.picker.chosen()
        return None if got is None else got[1]

    def best_result(self) -> dict[str, Any] | None:
        best = self.chosen()
        return dict(best) if best is not None else None

    def best_curve(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.xs), np.asarray(self.ys)

    def best_schedule(self) -> list[dict[str, Any]]:
        best = self.chosen()
        if best is None:
            return []
        return self.lineage.schedule(int(best["net"]), int(best["step"]))

    def hparam_bands(self) -> dict[str, Any]:
        bands: dict[str, dict[int, dict[str, np.ndarray]]] = defaultdict(dict)
        for (sub, name), by_step in self.values.items():
            steps = sorted(by_step)
            arr = [np.asarray(by_step[s]) for s in steps]
            bands[name][sub] = {
                "step": np.asarray(steps),
                "median": np.asarray([np.median(a) for a in arr]),
                "min": np.asarray([a.min() for a in arr]),
                "max": np.asarray([a.max() for a in arr]),
            }
        return {
            "names": self.names,
            "bands": dict(bands),
            "successes": self.successes,
            "space": self.space,
            "algorithm": self.algorithm,
            "schedule": self.best_schedule(),
        }


# --------------------------------------------------------------------------- extract


def best_result(run: str | Path | Events) -> dict[str, Any] | None:
    """The result event of the run's best network (the first one to reach its score,
    under the run's ``best`` rule: SPEC "The best network"), or None."""
    return _Scan().feed(_events(run)).best_result()


def best_curve(run: str | Path | Events) -> tuple[np.ndarray, np.ndarray]:
    """(steps, best score so far): x is the furthest step any worker has reached."""
    return _Scan().feed(_events(run)).best_curve()


def best_schedule(run: str | Path | Events) -> list[dict[str, Any]]:
    """The schedule (segments) of the best network, from the journal's lineage."""
    return _Scan().feed(_events(run)).best_schedule()


def _numeric(value: Any, spec: Mapping[str, Any]) -> float | None:
    """A hyperparameter value on its panel's axis: a choice is its index in ``choices``."""
    if spec.get("kind") == "choice":
        choices = list(spec.get("choices", []))
        for i, c in enumerate(choices):
            if isinstance(c, bool) == isinstance(value, bool) and c == value:
                return float(i)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def hparam_bands(run: str | Path | Events) -> dict[str, Any]:
    """Per sub-population and hyperparameter: steps, median, min, max; and successes.

    A member's hyperparameter at a step is the one its last ``result`` event trained
    with; values are grouped by the step reached (every ``eval_interval``). Evaluators
    form their own group (sub-population 0). Successes are ``copy`` events with reason
    ``success``: (step, target worker, the target's hyperparameters at that step).
    ``space`` is the search space (each hyperparameter's kind, bounds, choices) and
    ``schedule`` the best network's schedule, both from the journal.
    """
    return _Scan().feed(_events(run)).hparam_bands()


# --------------------------------------------------------------------------- render


def _hold(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The step function (x, y) sampled at ``grid`` (NaN before its first point)."""
    idx = np.searchsorted(x, grid, side="right") - 1
    out = np.where(idx >= 0, y[np.clip(idx, 0, None)], np.nan)
    return np.asarray(out, dtype=float)


def _spread(ys: np.ndarray, spread: str) -> tuple[np.ndarray, np.ndarray]:
    mean = np.nanmean(ys, axis=0)
    if spread == "std":
        sd = np.nanstd(ys, axis=0, ddof=1) if len(ys) > 1 else np.zeros_like(mean)
        return mean - sd, mean + sd
    return np.nanmin(ys, 0), np.nanmax(ys, 0)
