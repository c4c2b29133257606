"""Replay: train a fresh network from scratch along a schedule (SPEC "Lineage and schedules").

This is how the paper's Table 1 compares methods: the best network's schedule, replayed.
"""

from __future__ import annotations

from typing import Any

from firepbt.core.trainable import TrainableSpec
from firepbt.executors.base import replay_on


def replay_schedule(
    spec: TrainableSpec, schedule: list[dict[str, Any]], seed: int, chunk: int
) -> dict[str, float | None]:
    """Train a fresh network along ``schedule`` here, in this process (SPEC "Lineage and
    schedules"). A run replays through its executor instead (:meth:`Executor.replay`)."""
    return replay_on(spec.build(seed), schedule, chunk)
