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


def _events(run: str | Path | Events) -> list[Mapping[str, Any]]:
    return list(read_events(run)) if isinstance(run, str | Path) else list(run)


def _direction(events: Events) -> str:
    for ev in events:
        if ev.get("ev") == "start":
            return str(ev["config"].get("direction", "max"))
    return "max"


def _better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "max" else a < b


# --------------------------------------------------------------------------- extract


def best_result(run: str | Path | Events) -> dict[str, Any] | None:
    """The result event with the best score (the first one to reach it), or None."""
    events = _events(run)
    direction = _direction(events)
    best: Mapping[str, Any] | None = None
    for ev in events:
        if ev.get("ev") == "result" and ev.get("score") is not None:
            if best is None or _better(ev["score"], best["score"], direction):
                best = ev
    return dict(best) if best is not None else None


def best_curve(run: str | Path | Events) -> tuple[np.ndarray, np.ndarray]:
    """(steps, best score so far): x is the furthest step any worker has reached."""
    events = _events(run)
    direction = _direction(events)
    xs: list[int] = []
    ys: list[float] = []
    best = math.nan
    front = 0
    for ev in events:
        if ev.get("ev") != "result":
            continue
        front = max(front, int(ev["step"]))
        s = ev.get("score")
        if s is not None and (math.isnan(best) or _better(s, best, direction)):
            best = float(s)
        if not math.isnan(best):
            if xs and xs[-1] == front:
                ys[-1] = best
            else:
                xs.append(front)
                ys.append(best)
    return np.asarray(xs), np.asarray(ys)


def best_schedule(run: str | Path | Events) -> list[dict[str, Any]]:
    """The schedule (segments) of the best network, from the journal's lineage."""
    events = _events(run)
    best = best_result(events)
    if best is None:
        return []
    return Lineage.from_events(events).schedule(int(best["net"]), int(best["step"]))


def hparam_bands(run: str | Path | Events) -> dict[str, Any]:
    """Per sub-population and hyperparameter: steps, median, min, max; and successes.

    A member's hyperparameter at a step is the one its last ``result`` event trained
    with; values are grouped by the step reached (every ``eval_interval``). Evaluators
    form their own group (sub-population 0). Successes are ``copy`` events with reason
    ``success``: (step, target worker, the target's hyperparameters at that step).
    """
    events = _events(run)
    roles: list[tuple[str, int]] = []
    values: dict[tuple[int, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    current: dict[int, dict[str, Any]] = {}
    successes: list[dict[str, Any]] = []
    names: list[str] = []
    for ev in events:
        kind = ev.get("ev")
        if kind == "start":
            roles = [(str(r), int(s or 0)) for r, s in ev["roles"]]
            names = list(ev["config"]["space"].keys())
        elif kind == "result":
            w = int(ev["worker"])
            current[w] = ev["hparams"]
            sub = roles[w][1] if roles[w][0] == "member" else 0
            for name in names:
                v = ev["hparams"].get(name)
                if isinstance(v, int | float):
                    values[(sub, name)][int(ev["step"])].append(float(v))
        elif kind == "copy" and ev.get("reason") == "success":
            dst = int(ev["dst"])
            successes.append(
                {"step": int(ev["step"]), "target": dst, "hparams": dict(current.get(dst, {}))}
            )
    bands: dict[str, dict[int, dict[str, np.ndarray]]] = defaultdict(dict)
    for (sub, name), by_step in values.items():
        steps = sorted(by_step)
        arr = [np.asarray(by_step[s]) for s in steps]
        bands[name][sub] = {
            "step": np.asarray(steps),
            "median": np.asarray([np.median(a) for a in arr]),
            "min": np.asarray([a.min() for a in arr]),
            "max": np.asarray([a.max() for a in arr]),
        }
    return {"names": names, "bands": dict(bands), "successes": successes}


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
    events = _events(run_dir)
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    direction = _direction(events)
    paths = [
        render_hparam_bands(hparam_bands(events), out / "hparams.png", title=run_dir.name),
        render_best_curves(
            {run_dir.name: [best_curve(events)]},
            out / "best_score.png",
            ylabel="best score" + (" (lower is better)" if direction == "min" else ""),
            log_y=direction == "min",
        ),
    ]
    sched = best_schedule(events)
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
