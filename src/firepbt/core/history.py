"""Rebuilding curves from the journal (the journal is the source of truth).

A worker's curve holds its evaluations since its last incoming weight copy; a copy
restarts it with the source's latest point (SPEC "Weight copies"). Scores are turned
into Q (higher is better) with the run's direction, and a diverged result (score
``null`` in the journal) becomes NaN, exactly as the deciders saw them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from firepbt.core.curves import Curve


def curves_from_events(events: Iterable[Mapping[str, Any]]) -> dict[int, Curve]:
    """Each worker's current curve after the last event."""
    curves: dict[int, Curve] = {}
    latest: dict[int, tuple[int, float]] = {}
    sign = 1.0
    for ev in events:
        kind = ev.get("ev")
        if kind == "start":
            sign = 1.0 if ev["config"]["direction"] == "max" else -1.0
            curves = {i: Curve() for i in range(int(ev["workers"]))}
        elif kind == "result":
            w = int(ev["worker"])
            q = math.nan if ev["score"] is None else sign * float(ev["score"])
            curves[w].append(int(ev["step"]), q)
            latest[w] = (int(ev["step"]), q)
        elif kind == "copy":
            src, dst = int(ev["src"]), int(ev["dst"])
            if src in latest:
                step, q = latest[src]
                curves[dst] = Curve([step], [q])
                latest[dst] = (step, q)
            else:
                curves[dst] = Curve()
                latest.pop(dst, None)
    return curves
