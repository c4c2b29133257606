"""Several runs side by side (``firepbt compare DIR...``): grouped by algorithm, the paper's
Figure 4b (best score against step, mean and spread over seeds) and a mean ± std table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from firepbt.report.plot_data import _events, _Scan
from firepbt.report.plots import _also, render_best_curves
from firepbt.report.results import ALGORITHM_LABEL

__all__ = ["compare_runs", "runs_under"]


def runs_under(root: str | Path) -> Iterable[Path]:
    """Run directories (holding ``events.jsonl``) at or below ``root``, sorted."""
    root = Path(root)
    if (root / "events.jsonl").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("events.jsonl"))


def compare_runs(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    formats: Sequence[str] = ("png",),
    title: str = "",
) -> dict[str, Any]:
    """Group runs by algorithm; draw the best score against step (mean ± std over the
    runs of each algorithm: the paper's Figure 4b) to ``OUT/compare.<fmt>``; return
    ``{"groups": {label: [run dirs]}, "direction", "paths"}``."""
    groups: dict[str, list[Path]] = defaultdict(list)
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    directions = set()
    for d in run_dirs:
        scan = _Scan().feed(_events(Path(d)))  # one streaming pass per run
        label = ALGORITHM_LABEL.get(scan.algorithm, scan.algorithm or "?")
        groups[label].append(Path(d))
        curves[label].append(scan.best_curve())
        directions.add(scan.direction)
    if len(directions) > 1:
        raise ValueError("the runs do not share one direction (some max, some min)")
    direction = directions.pop() if directions else "max"
    order = [ALGORITHM_LABEL[k] for k in ("random", "pbt", "fire")]
    ordered = {
        k: curves[k]
        for k in sorted(
            curves, key=lambda k: (k not in order, order.index(k) if k in order else 0, k)
        )
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    first = render_best_curves(
        ordered,
        out / "compare.png",
        ylabel="best score" + (" (lower is better)" if direction == "min" else ""),
        log_y=direction == "min",
        spread="std",
        title=title or "best score reached by any worker",
        formats=formats,
    )
    return {
        "groups": {k: groups[k] for k in ordered},
        "direction": direction,
        "paths": _also(first, formats),
    }
