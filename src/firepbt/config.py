"""Experiment configuration: the TOML file, validated before any training starts.

Every key is documented in the README ("Configuration reference"). Each error names the
field it is about (``algorithm.evaluators: must be >= 1``) and is raised as
:class:`~firepbt.errors.ConfigError`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from firepbt.algorithms.fire import max_significant_points
from firepbt.algorithms.random_search import RelativeSchedule
from firepbt.errors import ConfigError
from firepbt.space import SearchSpace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_MISSING = object()


class _Fields:
    """Reads typed fields out of one TOML table, naming each on error."""

    def __init__(self, table: Any, prefix: str) -> None:
        if not isinstance(table, Mapping):
            raise ConfigError(f"{prefix}: expected a table, got {type(table).__name__}")
        self.table = dict(table)
        self.prefix = prefix
        self.seen: set[str] = set()

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
        self.seen.add(key)
        if key not in self.table:
            if default is _MISSING:
                raise ConfigError(f"{self.name(key)}: required field is missing")
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"{self.name(key)}: expected {names}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{self.name(key)}: must be finite, got {value!r}")
        return value

    def positive_int(self, key: str, default: Any = _MISSING, minimum: int = 1) -> int:
        value = self.get(key, int, default)
        if value < minimum:
            raise ConfigError(f"{self.name(key)}: must be >= {minimum}, got {value}")
        return int(value)

    def choice(self, key: str, options: tuple[str, ...], default: Any = _MISSING) -> str:
        value = self.get(key, str, default)
        if value not in options:
            raise ConfigError(
                f"{self.name(key)}: must be one of {', '.join(options)}; got {value!r}"
            )
        return str(value)

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.seen)
        if unknown:
            raise ConfigError(f"{self.name(unknown[0])}: unknown field")


@dataclass(frozen=True)
class RandomSettings:
    name: str = "random"
    population: int = 16
    schedule: RelativeSchedule | None = None

    @property
    def workers(self) -> int:
        return self.population


@dataclass(frozen=True)
class PBTSettings:
    name: str = "pbt"
    population: int = 16
    truncation: float = 0.25

    @property
    def workers(self) -> int:
        return self.population


@dataclass(frozen=True)
class FireSettings:
    name: str = "fire"
    subpopulations: int = 2
    subpopulation_size: int = 8
    evaluators: int = 6
    max_eval_steps: int = 7200
    p_stat: float = 0.01
    min_steps_before_eval: tuple[int, ...] = ()  # one per parent sub-population P_2..P_n
    truncation: float = 0.25
    smooth: bool = True

    @property
    def workers(self) -> int:
        return self.subpopulations * self.subpopulation_size + self.evaluators


AlgorithmSettings = RandomSettings | PBTSettings | FireSettings
EXECUTORS = ("inprocess", "processes", "ray")


@dataclass(frozen=True)
class RaySettings:
    """The ``[ray]`` table: where Ray runs and what each worker actor reserves."""

    address: str | None = None  # None: start a local Ray on loopback with the machine's CPUs
    cpus: float = 1.0  # per worker actor
    gpus: float = 0.0  # per worker actor


@dataclass(frozen=True)
class Config:
    """A validated experiment."""

    trainable: str
    space: SearchSpace
    algorithm: AlgorithmSettings
    steps: int
    args: Mapping[str, Any] = field(default_factory=dict)
    direction: str = "max"
    seed: int = 0
    eval_interval: int = 200
    ready_interval: int = 2400
    mode: str = "sync"
    replay: bool = True
    executor: str = "inprocess"
    slots: int | None = None  # workers training at once; None: CPU count, or one per device
    devices: tuple[str, ...] = ()  # one device per slot (process executor), e.g. cuda:0
    max_retries: int = 3  # re-runs of a task whose worker process or actor died
    ray: RaySettings = field(default_factory=RaySettings)
    tensorboard: bool = False  # write DIR/tensorboard/ (firepbt.tensorboard)
    checkpoints: bool = True  # checkpoint at each ready point (``firepbt resume``)
    keep_best_checkpoints: bool = False  # keep the best network's weights after the run
    search_path: str | None = None  # prepended to sys.path to import the trainable

    @property
    def workers(self) -> int:
        return self.algorithm.workers

    def with_seed(self, seed: int) -> Config:
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        algo = asdict(self.algorithm)
        if isinstance(self.algorithm, FireSettings):
            algo["min_steps_before_eval"] = list(self.algorithm.min_steps_before_eval)
        if algo.get("schedule") is None:
            algo.pop("schedule", None)
        else:
            algo["schedule"]["decays"] = list(algo["schedule"]["decays"])
        out = {
            "trainable": self.trainable,
            "direction": self.direction,
            "seed": self.seed,
            "steps": self.steps,
            "eval_interval": self.eval_interval,
            "ready_interval": self.ready_interval,
            "mode": self.mode,
            "replay": self.replay,
            "executor": self.executor,
            "devices": list(self.devices),
            "max_retries": self.max_retries,
            "ray": {k: v for k, v in asdict(self.ray).items() if v is not None},
            "tensorboard": self.tensorboard,
            "checkpoints": self.checkpoints,
            "keep_best_checkpoints": self.keep_best_checkpoints,
            "args": dict(self.args),
            **({} if self.slots is None else {"slots": self.slots}),
            "space": self.space.to_dict(),
            "algorithm": algo,
        }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, search_path: str | None = None) -> Config:
        f = _Fields(data, "")
        trainable = f.get("trainable", str)
        direction = f.choice("direction", ("max", "min"), "max")
        seed = f.positive_int("seed", 0, minimum=0)
        steps = f.positive_int("steps")
        eval_interval = f.positive_int("eval_interval", 200)
        ready_interval = f.positive_int("ready_interval", 2400)
        mode = f.choice("mode", ("sync", "async"), "sync")
        replay = f.get("replay", bool, True)
        executor = f.choice("executor", EXECUTORS, "inprocess")
        slots = f.positive_int("slots") if "slots" in f.table else None
        devices = _devices(f)
        max_retries = f.positive_int("max_retries", 3, minimum=0)
        ray = _ray(f.get("ray", dict, {}))
        if devices and executor != "processes":
            raise ConfigError(
                f"devices: only the processes executor pins slots to devices (executor is "
                f"{executor!r}; for Ray use ray.gpus)"
            )
        if devices and slots is not None and slots > len(devices):
            raise ConfigError(
                f"slots: {slots} slots but devices names {len(devices)} "
                f"({','.join(devices)}); at most one slot per device"
            )
        tensorboard = f.get("tensorboard", bool, False)
        checkpoints = f.get("checkpoints", bool, True)
        keep_best_checkpoints = f.get("keep_best_checkpoints", bool, False)
        args = f.get("args", dict, {})
        try:
            space = SearchSpace.from_dict(f.get("space", dict))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        algorithm = _algorithm(f.get("algorithm", dict), space)
        f.done()
        if ready_interval % eval_interval:
            raise ConfigError(
                f"ready_interval: must be a multiple of eval_interval ({eval_interval}), got {ready_interval}"
            )
        if steps % eval_interval:
            raise ConfigError(
                f"steps: must be a multiple of eval_interval ({eval_interval}), got {steps}"
            )
        if isinstance(algorithm, FireSettings):
            need = max_significant_points(algorithm.p_stat)
            if algorithm.max_eval_steps // eval_interval < need:
                raise ConfigError(
                    f"algorithm.max_eval_steps: max_eval_steps / eval_interval = "
                    f"{algorithm.max_eval_steps} / {eval_interval} gives fewer than the {need} "
                    f"points an evaluator needs to reach p < p_stat = {algorithm.p_stat}; no "
                    "weights could ever move between sub-populations (SPEC 'Enough points')"
                )
        return cls(
            trainable=trainable,
            space=space,
            algorithm=algorithm,
            steps=steps,
            args=args,
            direction=direction,
            seed=seed,
            eval_interval=eval_interval,
            ready_interval=ready_interval,
            mode=mode,
            replay=replay,
            executor=executor,
            slots=slots,
            devices=devices,
            max_retries=max_retries,
            ray=ray,
            tensorboard=tensorboard,
            checkpoints=checkpoints,
            keep_best_checkpoints=keep_best_checkpoints,
            search_path=search_path,
        )


def _devices(f: _Fields) -> tuple[str, ...]:
    """``devices``: a GPU count (``2`` → cuda:0, cuda:1), ``"cuda:0,cuda:1"`` or a list."""
    value = f.get("devices", (int, str, list), None)
    if value is None:
        return ()
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"devices: a GPU count must be >= 0, got {value}")
        return tuple(f"cuda:{i}" for i in range(value))
    items = value.split(",") if isinstance(value, str) else value
    if any(not isinstance(d, str) or not d.strip() for d in items):
        raise ConfigError(f"devices: expected names such as 'cuda:0,cuda:1', got {value!r}")
    names = tuple(d.strip() for d in items)
    if len(set(names)) != len(names):
        raise ConfigError(f"devices: each device may appear once, got {value!r}")
    return names


def _ray(table: Any) -> RaySettings:
    f = _Fields(table, "ray")
    address = f.get("address", str, None)
    cpus = f.get("cpus", float, 1.0)
    gpus = f.get("gpus", float, 0.0)
    f.done()
    if cpus < 0:
        raise ConfigError(f"ray.cpus: must be >= 0, got {cpus}")
    if gpus < 0:
        raise ConfigError(f"ray.gpus: must be >= 0, got {gpus}")
    if address is not None and not address.strip():
        raise ConfigError("ray.address: must not be empty (leave it out for a local Ray)")
    return RaySettings(address=address, cpus=float(cpus), gpus=float(gpus))


def _truncation(f: _Fields) -> float:
    value = f.get("truncation", float, 0.25)
    if not 0 < value <= 0.5:
        raise ConfigError(f"{f.name('truncation')}: must be in (0, 0.5], got {value}")
    return float(value)


def _algorithm(table: Any, space: SearchSpace) -> AlgorithmSettings:
    f = _Fields(table, "algorithm")
    name = f.choice("name", ("fire", "pbt", "random"))
    settings: AlgorithmSettings
    if name == "random":
        settings = RandomSettings(
            population=f.positive_int("population", 16), schedule=_schedule(f, space)
        )
    elif name == "pbt":
        population = f.positive_int("population", 16)
        if population < 4:
            raise ConfigError(
                f"algorithm.population: truncation selection needs at least 4 members, got {population}"
            )
        settings = PBTSettings(population=population, truncation=_truncation(f))
    else:
        n = f.positive_int("subpopulations", 2)
        if n < 2:
            raise ConfigError(f"algorithm.subpopulations: FIRE PBT needs at least 2, got {n}")
        size = f.positive_int("subpopulation_size", 8)
        if size < 4:
            raise ConfigError(
                f"algorithm.subpopulation_size: truncation selection needs at least 4 members, got {size}"
            )
        default_evaluators = max(1, (3 * (n - 1) * size) // 4)
        evaluators = f.positive_int("evaluators", default_evaluators)
        p_stat = f.get("p_stat", float, 0.01)
        if not 0 < p_stat < 1:
            raise ConfigError(f"algorithm.p_stat: must be in (0, 1), got {p_stat}")
        mins = f.get("min_steps_before_eval", (int, list), 0)
        mins_list = [mins] * (n - 1) if isinstance(mins, int) else list(mins)
        if len(mins_list) != n - 1 or any(not isinstance(m, int) or m < 0 for m in mins_list):
            raise ConfigError(
                "algorithm.min_steps_before_eval: expected a non-negative integer or a list of "
                f"{n - 1} (one per parent sub-population P_2..P_{n}), got {mins!r}"
            )
        settings = FireSettings(
            subpopulations=n,
            subpopulation_size=size,
            evaluators=evaluators,
            max_eval_steps=f.positive_int("max_eval_steps", 7200),
            p_stat=float(p_stat),
            min_steps_before_eval=tuple(mins_list),
            truncation=_truncation(f),
            smooth=f.get("smooth", bool, True),
        )
    f.done()
    return settings


def _schedule(f: _Fields, space: SearchSpace) -> RelativeSchedule | None:
    table = f.get("schedule", dict, None)
    if table is None:
        return None
    s = _Fields(table, "algorithm.schedule")
    param = s.get("param", str)
    if param not in space.names:
        raise ConfigError(f"algorithm.schedule.param: {param!r} is not in the search space")
    warmup = s.get("warmup", float, 0.0)
    decays = s.get("decays", list, [0.5, 0.75])
    factor = s.get("factor", float, 0.1)
    s.done()
    if not 0 <= warmup < 1:
        raise ConfigError(f"algorithm.schedule.warmup: must be in [0, 1), got {warmup}")
    if any(not isinstance(d, int | float) or not 0 < d < 1 for d in decays):
        raise ConfigError(
            f"algorithm.schedule.decays: fractions in (0, 1) expected, got {decays!r}"
        )
    if not factor > 0:
        raise ConfigError(f"algorithm.schedule.factor: must be > 0, got {factor}")
    return RelativeSchedule(param, float(warmup), tuple(float(d) for d in decays), float(factor))


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b=value`` → (["a", "b"], value parsed as a TOML value, else a plain string)."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected key=value")
    key, _, raw = item.partition("=")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        keys, value = parse_override(item)
        table = data
        for k in keys[:-1]:
            table = table.setdefault(k, {})
            if not isinstance(table, dict):
                raise ConfigError(f"--set {item}: {k} is not a table")
        table[keys[-1]] = value
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a TOML config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config: cannot read {p} ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {p} is not valid TOML ({exc})") from None
    data = apply_overrides(data, overrides or [])
    return Config.from_dict(data, search_path=str(p.resolve().parent))
