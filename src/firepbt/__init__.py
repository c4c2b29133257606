"""firepbt: FIRE PBT, PBT and random search for hyperparameter schedules.

The public entry points::

    from firepbt import load_config, run
    result = run(load_config("exp.toml"), "runs/exp")
"""

__version__ = "0.1.0"

from firepbt.config import Config, load_config  # noqa: E402
from firepbt.errors import ConfigError  # noqa: E402
from firepbt.runner import run  # noqa: E402
from firepbt.space import Choice, Int, LogUniform, SearchSpace, Uniform  # noqa: E402

__all__ = [
    "Choice",
    "Config",
    "ConfigError",
    "Int",
    "LogUniform",
    "SearchSpace",
    "Uniform",
    "__version__",
    "load_config",
    "run",
]
