"""firepbt: FIRE PBT, PBT and random search for hyperparameter schedules."""

__version__ = "0.1.0"
