"""Figures from a run's journal: pure "extract the data" functions plus thin renderers.

Everything here is rebuilt from ``events.jsonl`` alone (the journal is the source of
truth), so any run can be plotted, finished or not:

- :func:`best_curve`: the best score reached by any worker against the population's
  progress in steps (the paper's Figure 4b, one run; :func:`render_best_curves` draws
  mean and spread over seeds per method);
- :func:`hparam_bands`: per sub-population, the median and min-max of each
  hyperparameter over steps, and the evaluator successes (Figure 4a);
- :func:`best_schedule`: the schedule of the best network, from the lineage in the
  journal (Figure 1, :func:`render_schedules` draws it against reference schedules).

matplotlib is imported only inside the renderers (the ``plot`` extra).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from firepbt.runner.journal import read_events
from firepbt.runner.lineage import Lineage

__all__ = [
    "best_curve",
    "best_result",
    "best_schedule",
    "hparam_bands",
    "plot_run",
    "render_best_curves",
    "render_hparam_bands",
    "render_schedules",
]

Events = Sequence[Mapping[str, Any]]


def _events(run: str | Path | Events) -> Iterable[Mapping[str, Any]]:
    """The events of a run: streamed from the journal (never all in memory), or as given."""
    return read_events(run) if isinstance(run, str | Path) else run


def _better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "max" else a < b


class _Scan:
    """Everything the figures need, gathered in one pass over the journal.

    A run of 10^6 events is read line by line (issue 12): only the results of the
    extraction are kept, never the events themselves.
    """

    def __init__(self) -> None:
        self.direction = "max"
        self.best: Mapping[str, Any] | None = None
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
                self.roles = [(str(r), int(s or 0)) for r, s in ev["roles"]]
                self.names = list(ev["config"]["space"].keys())
                self.lineage = Lineage(int(ev["workers"]))
        return self

    def _result(self, ev: Mapping[str, Any]) -> None:
        score = ev.get("score")
        if score is not None and (
            self.best is None or _better(score, self.best["score"], self.direction)
        ):
            self.best = ev
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
        w = int(ev["worker"])
        self.current[w] = ev["hparams"]
        sub = self.roles[w][1] if self.roles[w][0] == "member" else 0
        for name in self.names:
            v = ev["hparams"].get(name)
            if isinstance(v, int | float):
                self.values[(sub, name)][int(ev["step"])].append(float(v))
        self.lineage.train(int(ev["net"]), int(ev["start"]), int(ev["step"]), ev["hparams"])

    def best_result(self) -> dict[str, Any] | None:
        return dict(self.best) if self.best is not None else None

    def best_curve(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.xs), np.asarray(self.ys)

    def best_schedule(self) -> list[dict[str, Any]]:
        if self.best is None:
            return []
        return self.lineage.schedule(int(self.best["net"]), int(self.best["step"]))

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
        return {"names": self.names, "bands": dict(bands), "successes": self.successes}


# --------------------------------------------------------------------------- extract


def best_result(run: str | Path | Events) -> dict[str, Any] | None:
    """The result event with the best score (the first one to reach it), or None."""
    return _Scan().feed(_events(run)).best_result()


def best_curve(run: str | Path | Events) -> tuple[np.ndarray, np.ndarray]:
    """(steps, best score so far): x is the furthest step any worker has reached."""
    return _Scan().feed(_events(run)).best_curve()


def best_schedule(run: str | Path | Events) -> list[dict[str, Any]]:
    """The schedule (segments) of the best network, from the journal's lineage."""
    return _Scan().feed(_events(run)).best_schedule()


def hparam_bands(run: str | Path | Events) -> dict[str, Any]:
    """Per sub-population and hyperparameter: steps, median, min, max; and successes.

    A member's hyperparameter at a step is the one its last ``result`` event trained
    with; values are grouped by the step reached (every ``eval_interval``). Evaluators
    form their own group (sub-population 0). Successes are ``copy`` events with reason
    ``success``: (step, target worker, the target's hyperparameters at that step).
    """
    return _Scan().feed(_events(run)).hparam_bands()


# --------------------------------------------------------------------------- render


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _step_xy(schedule: Sequence[Mapping[str, Any]], name: str) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for seg in schedule:
        v = float(seg["hparams"][name])
        xs += [seg["start"], seg["end"]]
        ys += [v, v]
    return xs, ys


def render_schedules(
    schedules: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]],
    path: str | Path,
    *,
    name: str = "lr",
    references: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    title: str = "",
) -> Path:
    """Figure 1: each method's best schedule(s) of ``name`` against reference schedules."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (method, scheds) in enumerate(schedules.items()):
        for j, sched in enumerate(scheds):
            xs, ys = _step_xy(sched, name)
            ax.plot(xs, ys, color=colors[i % len(colors)], alpha=0.8, lw=1.5,
                    label=method if j == 0 else None)  # fmt: skip
    for k, (label, sched) in enumerate((references or {}).items()):
        xs, ys = _step_xy(sched, name)
        ax.plot(xs, ys, color="k", ls=["--", ":", "-."][k % 3], lw=1.2, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(name)
    ax.set_title(title or f"best schedule of {name}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def render_hparam_bands(data: Mapping[str, Any], path: str | Path, *, title: str = "") -> Path:
    """Figure 4a: median and min-max band of each hyperparameter per sub-population."""
    plt = _plt()
    names = data["names"] or ["-"]
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 3.2 * len(names)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[:, 0], names, strict=True):
        for sub, band in sorted(data["bands"].get(name, {}).items()):
            label = f"P{sub}" if sub else "evaluators"
            color = colors[sub % len(colors)] if sub else "0.6"
            ax.plot(band["step"], band["median"], color=color, lw=1.3, label=label)
            ax.fill_between(band["step"], band["min"], band["max"], color=color, alpha=0.2)
        succ = [(s["step"], s["hparams"][name]) for s in data["successes"] if name in s["hparams"]]
        if succ:
            sx, sy = zip(*succ, strict=True)
            ax.scatter(sx, sy, marker="*", s=60, color="red", zorder=5, label="evaluator success")
        lows = [b["min"].min() for b in data["bands"].get(name, {}).values() if len(b["min"])]
        if lows and min(lows) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    axes[0, 0].set_title(title or "hyperparameters per sub-population", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def render_best_curves(
    curves: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    path: str | Path,
    *,
    ylabel: str = "best score",
    log_y: bool = False,
    references: Mapping[str, float] | None = None,
    title: str = "",
) -> Path:
    """Figure 4b: per method, the mean (line) and min-max (band) over seeds."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (method, runs) in enumerate(curves.items()):
        runs = [r for r in runs if len(r[0])]
        if not runs:
            continue
        grid = np.unique(np.concatenate([x for x, _ in runs]))
        ys = np.stack([_hold(x, y, grid) for x, y in runs])
        color = colors[i % len(colors)]
        ax.plot(
            grid, np.nanmean(ys, axis=0), color=color, lw=1.5, label=f"{method} (n={len(runs)})"
        )
        if len(runs) > 1:
            ax.fill_between(grid, np.nanmin(ys, 0), np.nanmax(ys, 0), color=color, alpha=0.2)
    for k, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, color="k", ls=["--", ":", "-."][k % 3], lw=1, label=label)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "best score reached by any worker", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def _hold(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The step function (x, y) sampled at ``grid`` (NaN before its first point)."""
    idx = np.searchsorted(x, grid, side="right") - 1
    out = np.where(idx >= 0, y[np.clip(idx, 0, None)], np.nan)
    return np.asarray(out, dtype=float)


def plot_run(run_dir: str | Path) -> list[Path]:
    """PNG figures of one run, written to ``RUN_DIR/plots/``; returns their paths."""
    run_dir = Path(run_dir)
    scan = _Scan().feed(_events(run_dir))  # one streaming pass over the journal
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    direction = scan.direction
    paths = [
        render_hparam_bands(scan.hparam_bands(), out / "hparams.png", title=run_dir.name),
        render_best_curves(
            {run_dir.name: [scan.best_curve()]},
            out / "best_score.png",
            ylabel="best score" + (" (lower is better)" if direction == "min" else ""),
            log_y=direction == "min",
        ),
    ]
    sched = scan.best_schedule()
    if sched:
        name = next(iter(sched[0]["hparams"]))
        paths.append(render_schedules({run_dir.name: [sched]}, out / "schedule.png", name=name))
    return paths


def runs_under(root: str | Path) -> Iterable[Path]:
    """Run directories (holding ``events.jsonl``) at or below ``root``, sorted."""
    root = Path(root)
    if (root / "events.jsonl").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("events.jsonl"))
