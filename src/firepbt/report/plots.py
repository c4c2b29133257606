"""Figures from a run's journal: pure "extract the data" functions plus thin renderers.

Everything here is rebuilt from ``events.jsonl`` alone (the journal is the source of
truth), so any run can be plotted, finished or not:

- :func:`best_curve`: the best score reached by any worker against the population's
  progress in steps (the paper's Figure 4b, one run; :func:`render_best_curves` draws
  mean and spread over seeds per method, :func:`compare_runs` groups runs by algorithm);
- :func:`hparam_bands`: per sub-population, the median and min-max of each
  hyperparameter over steps, the evaluator successes and the best network's schedule
  (Figure 4a);
- :func:`best_schedule`: the schedule of the best network, from the lineage in the
  journal (Figure 1, :func:`render_schedules` draws it against reference schedules).

Each hyperparameter gets its own panel, on the axis its search-space kind implies
(``log_uniform``: logarithmic; ``uniform``/``int``: linear; ``choice``: one tick per
choice). Figures are written at 150 dpi as PNG, and as SVG or PDF on request
(``formats``). matplotlib is imported only inside the renderers (the ``plot`` extra).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec

import numpy as np

from firepbt.report.plot_data import (
    _events,
    _hold,
    _numeric,
    _Scan,
    _spread,
    best_curve,
    best_result,
    best_schedule,
    hparam_bands,
    role_label,
)
from firepbt.report.results import ALGORITHM_LABEL

__all__ = [
    "FORMATS",
    "best_curve",
    "best_result",
    "best_schedule",
    "hparam_bands",
    "plot_run",
    "render_best_curves",
    "render_hparam_bands",
    "render_schedules",
    "role_label",
]

FORMATS = ("png", "svg", "pdf")
DPI = 150
FONT: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


P = ParamSpec("P")


def _styled(fn: Callable[P, Path]) -> Callable[P, Path]:
    """Draw under the figures' font sizes, leaving the caller's matplotlib settings alone."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Path:
        import matplotlib

        with matplotlib.rc_context(FONT):  # type: ignore[arg-type]
            return fn(*args, **kwargs)

    return wrapper


def _save(fig: Any, path: str | Path, formats: Sequence[str]) -> list[Path]:
    """Save ``fig`` once per format (``path`` with that suffix); the first path first."""
    plt = _plt()
    path = Path(path)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        plt.close(fig)
        raise ValueError(f"formats: expected some of {', '.join(FORMATS)}, got {list(formats)}")
    out = []
    for f in formats:
        p = path.with_suffix(f".{f}")
        fig.savefig(p, dpi=DPI, bbox_inches="tight")
        out.append(p)
    plt.close(fig)
    return out


def _scale(ax: Any, spec: Mapping[str, Any] | None, values: Iterable[float] = ()) -> None:
    """The axis of a hyperparameter from its kind, spanning its whole search range (no
    kind known: log if every value is positive)."""
    kind = (spec or {}).get("kind")
    low, high = (spec or {}).get("low"), (spec or {}).get("high")
    if kind == "log_uniform":
        ax.set_yscale("log")
        if low and high:  # the whole search range, 5% margins in log space
            pad = (high / low) ** 0.05
            ax.set_ylim(low / pad, high * pad)
    elif kind in ("uniform", "int") and low is not None and high is not None:
        pad = 0.05 * (high - low)
        ax.set_ylim(low - pad, high + pad)
    elif kind == "choice":
        choices = list((spec or {}).get("choices", []))
        ax.set_yticks(range(len(choices)), [str(c) for c in choices])
        ax.set_ylim(-0.5, len(choices) - 0.5)
    elif kind is None:
        vals = list(values)
        if vals and min(vals) > 0:
            ax.set_yscale("log")


def _step_xy(
    schedule: Sequence[Mapping[str, Any]], name: str, spec: Mapping[str, Any] | None = None
) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for seg in schedule:
        v = _numeric(seg["hparams"].get(name), spec or {})
        if v is None:
            continue
        xs += [seg["start"], seg["end"]]
        ys += [v, v]
    return xs, ys


@_styled
def render_schedules(
    schedules: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]],
    path: str | Path,
    *,
    name: str | None = None,
    space: Mapping[str, Mapping[str, Any]] | None = None,
    references: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    title: str = "",
    formats: Sequence[str] = ("png",),
) -> Path:
    """Figure 1: each method's best schedule(s) against reference schedules.

    One panel per hyperparameter (``name``: that one only), its axis from ``space``
    (without a space, log when every value is positive).
    """
    plt = _plt()
    first = next((s for scheds in schedules.values() for s in scheds if s), [])
    names = (
        [name] if name else (list(space) if space else list(first[0]["hparams"]) if first else [])
    )
    names = names or ["-"]
    fig, axes = plt.subplots(
        len(names), 1, figsize=(7.5, 2.6 * len(names) + 0.8), squeeze=False, sharex=True
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, hp in zip(axes[:, 0], names, strict=True):
        spec = (space or {}).get(hp)
        seen: list[float] = []
        for i, (method, scheds) in enumerate(schedules.items()):
            for j, sched in enumerate(scheds):
                xs, ys = _step_xy(sched, hp, spec)
                seen += ys
                ax.plot(xs, ys, color=colors[i % len(colors)], alpha=0.8, lw=1.6,
                        label=method if j == 0 else None)  # fmt: skip
        for k, (label, sched) in enumerate((references or {}).items()):
            xs, ys = _step_xy(sched, hp, spec)
            seen += ys
            ax.plot(xs, ys, color="k", ls=["--", ":", "-."][k % 3], lw=1.2, label=label)
        _scale(ax, spec, seen)
        ax.set_ylabel(hp)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("training step")
    axes[0, 0].set_title(title or "schedule of the best network")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)))
        fig.set_layout_engine("constrained")
    return _save(fig, path, formats)[0]


@_styled
def render_hparam_bands(
    data: Mapping[str, Any],
    path: str | Path,
    *,
    title: str = "",
    formats: Sequence[str] = ("png",),
) -> Path:
    """Figure 4a: per hyperparameter (one panel each), each sub-population's median (line)
    and min-max over its members (band), evaluator successes (circles: the hyperparameters
    of the member whose weights an evaluator replaced) and the best network's schedule."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    plt = _plt()
    names = data["names"] or ["-"]
    space = data.get("space") or {}
    algorithm = str(data.get("algorithm", ""))
    schedule = data.get("schedule") or []
    fig, axes = plt.subplots(
        len(names), 1, figsize=(7.5, 2.6 * len(names) + 1.2), squeeze=False, sharex=True
    )
    fig.set_layout_engine("constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    groups: dict[int, str] = {}
    for ax, name in zip(axes[:, 0], names, strict=True):
        spec = space.get(name)
        seen: list[float] = []
        for sub, band in sorted(data["bands"].get(name, {}).items()):
            color = colors[(sub - 1) % len(colors)] if sub else "0.55"
            groups[sub] = color
            ax.plot(band["step"], band["median"], color=color, lw=1.4)
            ax.fill_between(band["step"], band["min"], band["max"], color=color, alpha=0.2, lw=0)
            seen += list(band["min"]) + list(band["max"])
        succ = [
            (s["step"], _numeric(s["hparams"].get(name), spec or {})) for s in data["successes"]
        ]
        succ = [(x, y) for x, y in succ if y is not None]
        if succ:
            sx, sy = zip(*succ, strict=True)
            ax.scatter(sx, sy, marker="o", s=30, facecolors="none", edgecolors="k", zorder=5)
        xs, ys = _step_xy(schedule, name, spec)
        if xs:
            ax.plot(xs, ys, color="k", lw=1.0, ls="--", zorder=4)
        _scale(ax, spec, seen)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("training step")
    axes[0, 0].set_title(title or "hyperparameters per sub-population")
    handles: list[Any] = []
    for sub, color in sorted(groups.items(), key=lambda kv: (kv[0] == 0, kv[0])):
        label = role_label(sub, algorithm)
        handles.append(Line2D([], [], color=color, lw=1.4, label=f"{label}: median"))
        handles.append(Patch(color=color, alpha=0.25, label=f"{label}: min–max over members"))
    if data["successes"]:
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                mfc="none",
                mec="k",
                label="evaluator success (member's hyperparameters)",
            )  # fmt: skip
        )
    if schedule:
        handles.append(Line2D([], [], color="k", ls="--", lw=1.0, label="best network's schedule"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
    return _save(fig, path, formats)[0]


@_styled
def render_best_curves(
    curves: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    path: str | Path,
    *,
    ylabel: str = "best score",
    log_y: bool = False,
    references: Mapping[str, float] | None = None,
    title: str = "",
    spread: str = "minmax",
    formats: Sequence[str] = ("png",),
) -> Path:
    """Figure 4b: per method, the mean (line) over seeds and its spread (band):
    ``spread="minmax"`` (min-max over seeds) or ``"std"`` (mean ± one standard deviation)."""
    from matplotlib.patches import Patch

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    fig.set_layout_engine("constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    banded = False
    for i, (method, runs) in enumerate(curves.items()):
        runs = [r for r in runs if len(r[0])]
        if not runs:
            continue
        grid = np.unique(np.concatenate([x for x, _ in runs]))
        ys = np.stack([_hold(x, y, grid) for x, y in runs])
        color = colors[i % len(colors)]
        seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
        label = f"{method} (mean of {seeds})" if len(runs) > 1 else f"{method} ({seeds})"
        ax.plot(grid, np.nanmean(ys, axis=0), color=color, lw=1.6, label=label)
        if len(runs) > 1:
            lo, hi = _spread(ys, spread)
            ax.fill_between(grid, lo, hi, color=color, alpha=0.2, lw=0)
            banded = True
    for k, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, color="k", ls=["--", ":", "-."][k % 3], lw=1, label=label)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.set_title(title or "best score reached by any worker")
    handles, _ = ax.get_legend_handles_labels()
    if banded:
        what = "mean ± 1 std over seeds" if spread == "std" else "min–max over seeds"
        handles.append(Patch(color="0.5", alpha=0.3, label=f"band: {what}"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
    return _save(fig, path, formats)[0]


def _also(path: Path, formats: Sequence[str]) -> list[Path]:
    return [path.with_suffix(f".{f}") for f in formats]


def plot_run(run_dir: str | Path, *, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Figures of one run, written to ``RUN_DIR/plots/`` (one file per format); returns
    their paths: hparams (Figure 4a), best_score (4b), schedule (Figure 1)."""
    run_dir = Path(run_dir)
    scan = _Scan().feed(_events(run_dir))  # one streaming pass over the journal
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    direction = scan.direction
    data = scan.hparam_bands()
    label = ALGORITHM_LABEL.get(data["algorithm"], data["algorithm"])
    paths = [
        render_hparam_bands(
            data, out / "hparams.png", title=f"{run_dir.name}: {label}", formats=formats
        )
    ]
    paths.append(
        render_best_curves(
            {run_dir.name: [scan.best_curve()]},
            out / "best_score.png",
            ylabel="best score" + (" (lower is better)" if direction == "min" else ""),
            log_y=direction == "min",
            title=f"{run_dir.name}: best score reached by any worker",
            formats=formats,
        )
    )
    if data["schedule"]:
        paths.append(
            render_schedules(
                {ALGORITHM_LABEL.get(data["algorithm"], run_dir.name): [data["schedule"]]},
                out / "schedule.png",
                space=data["space"],
                title=f"{run_dir.name}: schedule of the best network",
                formats=formats,
            )
        )
    return [p for first in paths for p in _also(first, formats)]
