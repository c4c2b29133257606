"""The loggers a config's ``[log]`` table switches on, built before anything runs.

Each is a callback (:mod:`firepbt.runner.callbacks`). Building one checks that its
optional package is installed, so a missing one is a
:class:`~firepbt.core.errors.ConfigError` (one line naming the extra to install; exit
status 2 from the command line) before the run directory is touched.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from firepbt.config import Config
from firepbt.core.errors import ConfigError
from firepbt.runner.callbacks import Callback


def require(package: str, field: str, extra: str) -> None:
    """ConfigError unless ``package`` can be imported (found without importing it)."""
    try:
        found = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(f"{field}: needs the {package} package (pip install 'firepbt[{extra}]')")


def callbacks_for(config: Config, out_dir: str | Path) -> list[Callback]:
    """The loggers enabled by ``config.log``, in a fixed order: TensorBoard, W&B, MLflow."""
    log = config.log
    callbacks: list[Callback] = []
    if log.tensorboard:
        from firepbt.report.tensorboard import TensorBoardLogger

        callbacks.append(TensorBoardLogger(out_dir))
    if log.wandb is not None:
        require("wandb", "log.wandb", "wandb")
        from firepbt.report.wandb import WandbLogger

        callbacks.append(WandbLogger(log.wandb))
    if log.mlflow is not None:
        require("mlflow", "log.mlflow", "mlflow")
        from firepbt.report.mlflow import MlflowLogger

        callbacks.append(MlflowLogger(log.mlflow))
    return callbacks
