"""Replay: train a fresh network from scratch along a schedule (SPEC "Lineage and schedules").

This is how the paper's Table 1 compares methods: the best network's schedule, replayed.
"""

from __future__ import annotations

import math
from typing import Any

from firepbt.core.trainable import TrainableSpec


def replay_schedule(
    spec: TrainableSpec, schedule: list[dict[str, Any]], seed: int, chunk: int
) -> dict[str, float | None]:
    """Train a fresh network along ``schedule`` (SPEC "Lineage and schedules")."""
    net = spec.build(seed)
    for seg in schedule:
        left = seg["end"] - seg["start"]
        while left > 0:
            k = min(chunk, left)
            net.train(k, dict(seg["hparams"]))
            left -= k
    score = float(net.evaluate())
    test = float(net.test()) if callable(getattr(net, "test", None)) else None
    return {
        "score": score if math.isfinite(score) else None,
        "test": test if test is None or math.isfinite(test) else None,
    }
