"""Experiment configuration: the TOML file, validated before any training starts.

:class:`Config` and its settings (:mod:`~firepbt.config.settings`), validation
(:mod:`~firepbt.config.parse`), files and ``--set`` overrides (:mod:`~firepbt.config.load`).
"""

from firepbt.config.load import apply_overrides, load_config, parse_override
from firepbt.config.settings import (
    EXECUTORS,
    AlgorithmSettings,
    Config,
    FireSettings,
    LogSettings,
    MlflowSettings,
    PBTSettings,
    RandomSettings,
    RaySettings,
    SimulatedSettings,
    WandbSettings,
)

__all__ = [
    "EXECUTORS",
    "AlgorithmSettings",
    "Config",
    "FireSettings",
    "LogSettings",
    "MlflowSettings",
    "PBTSettings",
    "RandomSettings",
    "RaySettings",
    "SimulatedSettings",
    "WandbSettings",
    "apply_overrides",
    "load_config",
    "parse_override",
]
