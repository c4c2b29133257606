"""The trainable protocol: the user's training code, as firepbt sees it.

A trainable is any class with::

    __init__(self, seed: int, **args)
    train(self, steps: int, hparams: dict) -> None
    evaluate(self) -> float          # the objective Q
    state_dict(self) -> Any          # picklable, independent of later training
    load_state_dict(self, state) -> None
    test(self) -> float              # optional: a held-out score reported beside Q

firepbt counts steps; the trainable trains as many as it is told.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from firepbt.core.errors import ConfigError

Hparams = dict[str, Any]
# The bundled trainables moved from firepbt.benchmarks to firepbt.tasks (issue 8); configs
# and run directories that name the old module still load.
RENAMED = ("firepbt.benchmarks.", "firepbt.tasks.")
REQUIRED_METHODS = ("train", "evaluate", "state_dict", "load_state_dict")


@runtime_checkable
class Trainable(Protocol):
    """What firepbt calls on a trainable (see the module docstring for the constructor and ``test``)."""

    def train(self, steps: int, hparams: Hparams) -> None:
        """Train ``steps`` steps with ``hparams`` (a dict: name -> value)."""

    def evaluate(self) -> float:
        """The objective Q; raising or a non-finite value marks the network diverged."""

    def state_dict(self) -> Any:
        """A picklable copy of everything ``train`` depends on, random state included."""

    def load_state_dict(self, state: Any) -> None:
        """Become the network ``state`` describes."""


def load_trainable(path: str, *, search_path: str | None = None) -> type:
    """Import ``module:Class`` and check it has the trainable methods (ConfigError if not)."""
    if not isinstance(path, str) or path.count(":") != 1:
        raise ConfigError(f"trainable: expected 'module:Class', got {path!r}")
    module_name, _, attr = path.partition(":")
    if module_name.startswith(RENAMED[0]):  # run directories written before 0.2
        module_name = RENAMED[1] + module_name[len(RENAMED[0]) :]
    if search_path and search_path not in sys.path:
        sys.path.insert(0, search_path)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"trainable: cannot import module {module_name!r} ({type(exc).__name__}: {exc})"
        ) from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise ConfigError(f"trainable: module {module_name!r} has no attribute {attr!r}")
    if not isinstance(cls, type):
        raise ConfigError(f"trainable: {path} is not a class")
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(cls, m, None))]
    if missing:
        raise ConfigError(f"trainable: {path} is missing method(s) {', '.join(missing)}")
    return cls


@dataclass(frozen=True)
class TrainableSpec:
    """How to build a worker's trainable: an import path (or a class) and its arguments."""

    path: str
    args: Mapping[str, Any] = field(default_factory=dict)
    search_path: str | None = None
    cls: type | None = None

    def resolve(self) -> type:
        """The trainable's class, imported from ``path`` unless given as ``cls``."""
        return self.cls or load_trainable(self.path, search_path=self.search_path)

    def build(self, seed: int) -> Any:
        """A new trainable: ``cls(seed=seed, **args)``."""
        return self.resolve()(seed=seed, **dict(self.args))

    @property
    def has_test(self) -> bool:
        return callable(getattr(self.resolve(), "test", None))
