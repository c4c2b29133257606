"""The population algorithms as pure deciders: random search, PBT and FIRE PBT."""

from firepbt.algorithms.base import Assign, Command, CopyWeights, Decider, Free, SetHparams, Worker
from firepbt.algorithms.fire import FirePBT
from firepbt.algorithms.pbt import PBT, truncation
from firepbt.algorithms.random_search import RandomSearch, RelativeSchedule

__all__ = [
    "PBT",
    "Assign",
    "Command",
    "CopyWeights",
    "Decider",
    "Free",
    "FirePBT",
    "RandomSearch",
    "RelativeSchedule",
    "SetHparams",
    "Worker",
    "truncation",
]
