"""The trainable protocol: the user's training code, as firepbt sees it.

A trainable is any class with::

    __init__(self, seed: int, **args)
    train(self, steps: int, hparams: dict) -> None
    evaluate(self) -> float          # the objective Q
    state_dict(self) -> Any          # picklable, independent of later training
    load_state_dict(self, state) -> None
    test(self) -> float              # optional: a held-out score reported beside Q
    accepted_hparams                 # optional: the hyperparameter names it uses

firepbt counts steps; the trainable trains as many as it is told.

**Declaring hyperparameters.** A trainable may say which hyperparameters it uses with
``accepted_hparams``: a collection of names, or a method returning one (called on a
built instance, so it may look at the optimiser). Then a search space that names any
other hyperparameter is refused before training (``space.<name>: ...``, exit status 2):
tuning a hyperparameter the code never reads would change nothing and report a "best
schedule" that was never applied. Without ``accepted_hparams`` nothing is checked.
:class:`firepbt.torch.TorchTrainable` declares its optimiser's keys and the names in its
``handled_hparams``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from firepbt.core.errors import ConfigError, describe_exception, did_you_mean

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
        line, _, where = describe_exception(exc, skip=0)
        at = f" at {where}" if where and not isinstance(exc, ModuleNotFoundError) else ""
        raise ConfigError(f"trainable: cannot import module {module_name!r} ({line}{at})") from None
    cls = getattr(module, attr, None)
    if cls is None:
        classes = [k for k, v in vars(module).items() if isinstance(v, type)]
        raise ConfigError(
            f"trainable: module {module_name!r} has no attribute {attr!r}"
            + did_you_mean(attr, classes)
        )
    if not isinstance(cls, type):
        raise ConfigError(f"trainable: {path} is not a class")
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(cls, m, None))]
    if missing:
        raise ConfigError(f"trainable: {path} is missing method(s) {', '.join(missing)}")
    return cls


def accepted_hparams(trainable: Any) -> frozenset[str] | None:
    """The hyperparameter names a built trainable declares it uses, or None (undeclared)."""
    declared = getattr(trainable, "accepted_hparams", None)
    if callable(declared):
        declared = declared()
    if declared is None:
        return None
    if isinstance(declared, str) or not all(isinstance(n, str) for n in declared):
        raise ConfigError(
            f"trainable: {type(trainable).__name__}.accepted_hparams must be a collection of "
            f"names, got {declared!r}"
        )
    return frozenset(declared)


def check_hparams(trainable: Any, names: Sequence[str], path: str) -> None:
    """ConfigError naming the first hyperparameter of ``names`` the trainable does not use."""
    accepted = accepted_hparams(trainable)
    if accepted is None:
        return
    for name in names:
        if name not in accepted:
            uses = ", ".join(sorted(accepted)) or "none"
            raise ConfigError(
                f"space.{name}: the trainable {path} does not use a hyperparameter named "
                f"{name!r}{did_you_mean(name, accepted)}; it declares: {uses}. Tuning it would "
                "change nothing (a TorchTrainable uses its optimiser's keys and the names in "
                "its handled_hparams)"
            )


@dataclass(frozen=True)
class TrainableSpec:
    """How to build a worker's trainable: an import path (or a class), its arguments and
    the search space's hyperparameter names (checked against ``accepted_hparams``)."""

    path: str
    args: Mapping[str, Any] = field(default_factory=dict)
    search_path: str | None = None
    cls: type | None = None
    hparams: tuple[str, ...] = ()

    def resolve(self) -> type:
        """The trainable's class, imported from ``path`` unless given as ``cls``."""
        return self.cls or load_trainable(self.path, search_path=self.search_path)

    def build(self, seed: int) -> Any:
        """A new trainable: ``cls(seed=seed, **args)``, its declared hyperparameters checked."""
        net = self.resolve()(seed=seed, **dict(self.args))
        self.check(net)
        return net

    def check(self, net: Any) -> None:
        """Refuse hyperparameters the built trainable ``net`` declares it does not use."""
        check_hparams(net, self.hparams, self.path)

    @property
    def has_test(self) -> bool:
        return callable(getattr(self.resolve(), "test", None))
