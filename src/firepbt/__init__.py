"""firepbt: FIRE PBT, PBT and random search for hyperparameter schedules.

The public entry points::

    from firepbt import load_best, load_config, run
    result = run(load_config("exp.toml"), "runs/exp")
    net = load_best("runs/exp")  # with keep_best_checkpoints = true

The package is layered (``pyproject.toml``, ``[tool.importlinter]``): ``core`` (curves,
spaces, the trainable protocol) <- ``algorithms`` (pure deciders) <- ``config`` <-
``executors`` <- ``runner`` (the loop, journal, checkpoints, resume, replay) <- ``report``
(tables, plots, live view, loggers) <- ``api`` <- ``cli``; ``integrations`` (PyTorch) and
``tasks`` (bundled trainables) are used by name from configs.
"""

from firepbt._version import __version__
from firepbt.api import load_best, resume, run
from firepbt.config import Config, load_config
from firepbt.core.errors import ConfigError
from firepbt.core.space import Choice, Int, LogUniform, SearchSpace, Uniform

__all__ = [
    "Choice",
    "Config",
    "ConfigError",
    "Int",
    "LogUniform",
    "SearchSpace",
    "Uniform",
    "__version__",
    "load_best",
    "load_config",
    "resume",
    "run",
]
