"""Search spaces: which hyperparameters a population tunes, how it starts, how it explores.

A space is the ``[space.<name>]`` tables of the experiment TOML, one per hyperparameter,
kept in declared order. Explore follows SPEC "PBT inside every sub-population": with
``resample_probability`` a value is drawn afresh from its prior (the full bounds);
otherwise a continuous value is multiplied by a factor drawn uniformly from ``perturb``
and clipped to its bounds, an integer is multiplied, rounded (half up) and clipped, and
a categorical moves to a neighbouring choice.

Random stream: every method walks the parameters in declared order. ``explore`` draws
the resample coin for every parameter (even when its probability is 0), then exactly one
more draw (the prior value, the perturb factor, or the neighbour's side, drawn even at an
end of the choices). How much of the stream a call consumes thus depends only on the
space and the coin outcomes, never on the hyperparameter values.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, fields, replace
from typing import Any, ClassVar, TypeAlias, TypeVar

import numpy as np

from firepbt.core.errors import did_you_mean

DEFAULT_PERTURB: tuple[float, ...] = (0.5, 0.8, 1.25, 2.0)


class SpaceError(ValueError):
    """An invalid space or hyperparameter set; the message starts with the field path."""


@dataclass(frozen=True)
class LogUniform:
    """Continuous on a log scale, ``exp(U(log low, log high))``; needs ``low > 0``."""

    KIND: ClassVar[str] = "log_uniform"
    low: float
    high: float
    init: tuple[float, float] | None = None
    perturb: tuple[float, ...] = DEFAULT_PERTURB
    resample_probability: float = 0.0


@dataclass(frozen=True)
class Uniform:
    """Continuous, ``U(low, high)``."""

    KIND: ClassVar[str] = "uniform"
    low: float
    high: float
    init: tuple[float, float] | None = None
    perturb: tuple[float, ...] = DEFAULT_PERTURB
    resample_probability: float = 0.0


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]`` (both inclusive)."""

    KIND: ClassVar[str] = "int"
    low: int
    high: int
    init: tuple[int, int] | None = None
    perturb: tuple[float, ...] = DEFAULT_PERTURB
    resample_probability: float = 0.0


@dataclass(frozen=True)
class Choice:
    """A categorical; ``init`` is the subset of ``choices`` the population starts from."""

    KIND: ClassVar[str] = "choice"
    choices: tuple[Any, ...]
    init: tuple[Any, ...] | None = None
    resample_probability: float = 0.0


Param: TypeAlias = LogUniform | Uniform | Int | Choice
_CLASSES: dict[str, type[Param]] = {c.KIND: c for c in (LogUniform, Uniform, Int, Choice)}
_SEQUENCES = ("init", "perturb", "choices")
N = TypeVar("N", int, float)


def _real(path: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise SpaceError(f"{path}: must be a number (got {type(v).__name__} {v!r})")
    if not math.isfinite(float(v)):
        raise SpaceError(f"{path}: must be finite (got {v!r})")
    return float(v)


def _integer(path: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise SpaceError(f"{path}: must be an integer (got {type(v).__name__} {v!r})")
    return int(v)


def _seq(path: str, v: Any) -> tuple[Any, ...]:
    if not isinstance(v, list | tuple):
        raise SpaceError(f"{path}: must be an array (got {type(v).__name__} {v!r})")
    return tuple(v)


def _same(a: Any, b: Any) -> bool:
    """Choice equality: ``1 == 1.0`` but a boolean never equals a number."""
    return isinstance(a, bool) == isinstance(b, bool) and bool(a == b)


def _index(choices: tuple[Any, ...], v: Any) -> int:
    return next((i for i, c in enumerate(choices) if _same(c, v)), -1)


def _bounds(path: str, p: Any, conv: Callable[[str, Any], N]) -> tuple[N, N, tuple[N, N] | None]:
    low, high = conv(f"{path}.low", p.low), conv(f"{path}.high", p.high)
    if isinstance(p, LogUniform) and low <= 0:
        raise SpaceError(f"{path}.low: must be > 0 for log_uniform (got {p.low!r})")
    if not low < high:
        raise SpaceError(f"{path}.low: must be < high ({p.high!r}) (got {p.low!r})")
    if p.init is None:
        return low, high, None
    pair = _seq(f"{path}.init", p.init)
    if len(pair) != 2:
        raise SpaceError(f"{path}.init: must be a pair [a, b] (got {p.init!r})")
    a, b = conv(f"{path}.init", pair[0]), conv(f"{path}.init", pair[1])
    if not low <= a <= b <= high:
        raise SpaceError(f"{path}.init: must satisfy low <= a <= b <= high (got {p.init!r})")
    return low, high, (a, b)


def _check(path: str, p: Any) -> Param:
    """Validates ``p`` and returns it normalised (tuples, floats for continuous bounds)."""
    if not isinstance(p, Param):
        raise SpaceError(f"{path}: expected LogUniform, Uniform, Int or Choice (got {p!r})")
    rp = _real(f"{path}.resample_probability", p.resample_probability)
    if not 0 <= rp <= 1:
        raise SpaceError(f"{path}.resample_probability: must be in [0, 1] (got {rp!r})")
    if isinstance(p, Choice):
        choices = _seq(f"{path}.choices", p.choices)
        if not choices:
            raise SpaceError(f"{path}.choices: at least one choice is required")
        for i, c in enumerate(choices):
            if not isinstance(c, str | numbers.Real) or (
                not isinstance(c, str) and not math.isfinite(float(c))
            ):
                raise SpaceError(f"{path}.choices: strings, finite numbers or booleans (got {c!r})")
            if _index(choices[:i], c) >= 0:
                raise SpaceError(f"{path}.choices: duplicate value {c!r}")
        init = None
        if p.init is not None:
            init = _seq(f"{path}.init", p.init)
            if not init:
                raise SpaceError(f"{path}.init: at least one choice is required")
            for i, c in enumerate(init):
                if _index(choices, c) < 0 or _index(init[:i], c) >= 0:
                    raise SpaceError(f"{path}.init: {c!r} is not a distinct member of choices")
            init = tuple(choices[_index(choices, c)] for c in init)
        return replace(p, choices=choices, init=init, resample_probability=rp)
    perturb = _seq(f"{path}.perturb", p.perturb)
    if not perturb:
        raise SpaceError(f"{path}.perturb: at least one factor is required")
    factors = tuple(_real(f"{path}.perturb", f) for f in perturb)
    if min(factors) <= 0:
        raise SpaceError(f"{path}.perturb: factors must be > 0 (got {p.perturb!r})")
    if isinstance(p, Int):
        ilow, ihigh, iinit = _bounds(path, p, _integer)
        return Int(ilow, ihigh, iinit, factors, rp)
    low, high, init2 = _bounds(path, p, _real)
    return type(p)(low, high, init2, factors, rp)


def _clip(x: N, low: N, high: N) -> N:
    return min(max(x, low), high)


def _support(p: Param, prior: bool) -> tuple[Any, ...]:
    """The choices (a ``Choice``) or the bounds ``(a, b)`` to draw from: the prior's, or
    unless ``prior`` the init range or subset where one is given."""
    if isinstance(p, Choice):
        return p.choices if prior or p.init is None else p.init
    return (p.low, p.high) if prior or p.init is None else p.init


def _draw(p: Param, rng: np.random.Generator, prior: bool) -> Any:
    """One draw from the prior (full bounds) or, unless ``prior``, the init range."""
    if isinstance(p, Choice):
        pool = _support(p, prior)
        return pool[int(rng.integers(len(pool)))]
    if isinstance(p, Int):
        ia, ib = _support(p, prior)
        return int(rng.integers(ia, ib, endpoint=True))
    a, b = _support(p, prior)
    if isinstance(p, LogUniform):
        return _clip(math.exp(float(rng.uniform(math.log(a), math.log(b)))), a, b)
    return _clip(float(rng.uniform(a, b)), a, b)


def _quantile(p: Param, u: float) -> Any:
    """The value at probability ``u`` in [0, 1) of the initial distribution (the init
    range or subset where given, else the prior): the inverse of its CDF."""
    if isinstance(p, Choice):
        pool = _support(p, prior=False)
        return pool[min(int(u * len(pool)), len(pool) - 1)]
    if isinstance(p, Int):
        ia, ib = _support(p, prior=False)
        return min(ia + int(u * (ib - ia + 1)), ib)
    a, b = _support(p, prior=False)
    if isinstance(p, LogUniform):
        return _clip(math.exp(math.log(a) + u * (math.log(b) - math.log(a))), a, b)
    return _clip(a + u * (b - a), a, b)


class SearchSpace(Mapping[str, Param]):
    """The hyperparameters of an experiment, by name, in declared order."""

    def __init__(self, params: Mapping[str, Param]) -> None:
        if not isinstance(params, Mapping):
            raise SpaceError(f"space: expected a table (got {type(params).__name__})")
        if not params:
            raise SpaceError("space: at least one hyperparameter is required")
        checked: dict[str, Param] = {}
        for name, p in params.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(f"space: names must be non-empty strings (got {name!r})")
            checked[name] = _check(f"space.{name}", p)
        self._params = checked

    @classmethod
    def from_dict(cls, d: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
        """Reads the TOML shape: one ``{kind = ..., ...}`` table per hyperparameter."""
        if not isinstance(d, Mapping):
            raise SpaceError(f"space: expected a table (got {type(d).__name__})")
        valid = ", ".join(_CLASSES)
        params: dict[str, Param] = {}
        for name, table in d.items():
            path = f"space.{name}"
            if not isinstance(table, Mapping):
                raise SpaceError(f"{path}: expected a table (got {type(table).__name__})")
            if "kind" not in table:
                raise SpaceError(f"{path}.kind: required, one of {valid}")
            kind = table["kind"]
            if not isinstance(kind, str) or kind not in _CLASSES:
                raise SpaceError(
                    f"{path}.kind: unknown kind {kind!r}; valid kinds: {valid}"
                    + did_you_mean(kind, _CLASSES)
                )
            klass = _CLASSES[kind]
            keys = [f.name for f in fields(klass)]
            for key in table:
                if key != "kind" and key not in keys:
                    allowed = ", ".join(["kind", *keys])
                    raise SpaceError(
                        f"{path}.{key}: unknown key for {kind} (valid: {allowed})"
                        + did_you_mean(key, ["kind", *keys])
                    )
            for f in fields(klass):
                if f.default is MISSING and f.name not in table:
                    raise SpaceError(f"{path}.{f.name}: required for {kind}")
            kwargs = {k: v for k, v in table.items() if k != "kind"}
            for k in _SEQUENCES:
                if k in kwargs:
                    kwargs[k] = _seq(f"{path}.{k}", kwargs[k])
            params[name] = klass(**kwargs)
        return cls(params)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The TOML shape, JSON-able; ``from_dict(to_dict())`` equals this space."""
        out: dict[str, dict[str, Any]] = {}
        for name, p in self._params.items():
            row: dict[str, Any] = {"kind": p.KIND}
            for f in fields(p):
                v = getattr(p, f.name)
                if v is not None:
                    row[f.name] = list(v) if isinstance(v, tuple) else v
            out[name] = row
        return out

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._params)

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return list(self._params.items()) == list(other._params.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SearchSpace({self._params!r})"

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """The initial distribution: the ``init`` range (or subset) where given, else the prior."""
        return {name: _draw(p, rng, prior=False) for name, p in self._params.items()}

    def sample_stratified(self, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        """``n`` draws from the initial distribution (as :meth:`sample`), stratified: for
        every hyperparameter, each of ``n`` equal-probability slices of that distribution
        holds exactly one draw (a Latin hypercube over the hyperparameters), the slices
        matched to draws by an independent random permutation per hyperparameter.

        I.i.d. draws can leave a small population entirely in one region of a wide
        prior (issue 11: on NQM, seeds whose parent sub-population drew all 8 learning
        rates in the lowest third of the log-range); stratified draws cannot. A
        choice (or integer) with fewer values than ``n`` gets each value
        ``floor(n / k)`` or ``ceil(n / k)`` times. Random stream: per hyperparameter in
        declared order, one permutation of ``n`` then ``n`` uniforms."""
        if n < 1:
            raise SpaceError(f"sample_stratified: n must be >= 1, got {n}")
        out: list[dict[str, Any]] = [{} for _ in range(n)]
        for name, p in self._params.items():
            perm = rng.permutation(n)
            u = (perm + rng.random(n)) / n  # one uniform in each slice [k/n, (k+1)/n)
            for i in range(n):
                out[i][name] = _quantile(p, float(u[i]))
        return out

    def sample_prior(self, rng: np.random.Generator) -> dict[str, Any]:
        """The prior: uniform (log-uniform) over the full bounds, or over all choices."""
        return {name: _draw(p, rng, prior=True) for name, p in self._params.items()}

    def explore(
        self, hparams: Mapping[str, Any], rng: np.random.Generator, power: float = 1.0
    ) -> dict[str, Any]:
        """A perturbed copy of ``hparams`` (validated first); see the module docstring.
        ``power`` raises each drawn ``perturb`` factor to that power (1: the factors as
        given; 2 turns [0.5, 0.8, 1.25, 2] into [0.25, 0.64, 1.5625, 4]) with the same
        random draws."""
        self.validate(hparams)
        out: dict[str, Any] = {}
        for name, p in self._params.items():
            v = hparams[name]
            if rng.random() < p.resample_probability:
                out[name] = _draw(p, rng, prior=True)
            elif isinstance(p, Choice):
                i, n = _index(p.choices, v), len(p.choices)
                j = i + (1 if int(rng.integers(2)) else -1)  # drawn even at an end
                if not 0 <= j < n:
                    j = 2 * i - j if n > 1 else i
                out[name] = p.choices[j]
            else:
                factor = p.perturb[int(rng.integers(len(p.perturb)))] ** power
                if isinstance(p, Int):
                    out[name] = _clip(math.floor(int(v) * factor + 0.5), p.low, p.high)
                else:
                    out[name] = _clip(float(v) * factor, p.low, p.high)
        return out

    def validate(self, hparams: Mapping[str, Any]) -> None:
        """Every name present and no others; values inside bounds / among the choices."""
        if not isinstance(hparams, Mapping):
            raise SpaceError(f"hparams: expected a mapping (got {type(hparams).__name__})")
        for key in hparams:
            if key not in self._params:
                raise SpaceError(f"hparams.{key}: not in the search space {list(self.names)}")
        for name, p in self._params.items():
            path = f"hparams.{name}"
            if name not in hparams:
                raise SpaceError(f"{path}: missing")
            v = hparams[name]
            if isinstance(p, Choice):
                if _index(p.choices, v) < 0:
                    raise SpaceError(f"{path}: {v!r} is not one of {list(p.choices)}")
                continue
            x = _integer(path, v) if isinstance(p, Int) else _real(path, v)
            if not p.low <= x <= p.high:
                raise SpaceError(f"{path}: {v!r} is outside [{p.low!r}, {p.high!r}]")
