"""The observers a config asks for (``tensorboard = true``), built before anything runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from firepbt.config import Config

Observer = Callable[[dict[str, Any]], None]


def observers_for(config: Config, out_dir: str | Path) -> list[Observer]:
    """Observers enabled by ``config``; a missing optional package raises ConfigError here."""
    observers: list[Observer] = []
    if config.tensorboard:
        from firepbt.report.tensorboard import TensorBoardLogger

        observers.append(TensorBoardLogger(out_dir))
    return observers
