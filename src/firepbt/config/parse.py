"""Validating a config table into a :class:`~firepbt.config.settings.Config`.

Checks run before anything trains; each error names its field and is raised as
:class:`~firepbt.core.errors.ConfigError` (the CLI prints it and exits with status 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from firepbt.algorithms.fire import max_significant_points
from firepbt.algorithms.random_search import RelativeSchedule
from firepbt.config.fields import Fields
from firepbt.config.settings import (
    BEST_RULES,
    END_RULES,
    EXECUTORS,
    PHI_RULES,
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
from firepbt.core.errors import ConfigError
from firepbt.core.space import SearchSpace


def config_from_dict(data: Mapping[str, Any], *, search_path: str | None = None) -> Config:
    """Validate a config table; the first problem raises ConfigError naming its field."""
    f = Fields(data, "")
    trainable = f.get("trainable", str)
    direction = f.choice("direction", ("max", "min"), "max")
    seed = f.positive_int("seed", 0, minimum=0)
    steps = f.positive_int("steps")
    eval_interval = f.positive_int("eval_interval", 200)
    ready_interval = f.positive_int("ready_interval", 2400)
    mode = f.choice("mode", ("sync", "async"), "sync")
    replay = f.get("replay", bool, True)
    best = f.choice("best", BEST_RULES, "final")
    end = f.choice("end", END_RULES, Config.end)
    executor = f.choice("executor", EXECUTORS, "inprocess")
    slots = f.positive_int("slots") if "slots" in f.table else None
    devices = _devices(f)
    max_retries = f.positive_int("max_retries", 3, minimum=0)
    task_timeout = f.get("task_timeout", float, None)
    if task_timeout is not None and task_timeout <= 0:
        raise ConfigError(
            f"task_timeout: must be > 0 seconds (leave it out for no limit), got {task_timeout}"
        )
    ray = _ray(f.get("ray", dict, {}), search_path)
    simulated = _simulated(f.get("simulated", dict, {}))
    if "simulated" in f.table and executor != "simulated":
        raise ConfigError(
            f"simulated: this table sets up the simulated executor, but executor is {executor!r}"
        )
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
    log = _log(f.get("log", dict, {}), f.get("tensorboard", bool, None))
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
    return Config(
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
        best=best,
        end=end,
        executor=executor,
        slots=slots,
        devices=devices,
        max_retries=max_retries,
        task_timeout=task_timeout,
        ray=ray,
        simulated=simulated,
        log=log,
        checkpoints=checkpoints,
        keep_best_checkpoints=keep_best_checkpoints,
        search_path=search_path,
    )


def _log(table: Any, tensorboard: bool | None) -> LogSettings:
    """The ``[log]`` table; the top-level ``tensorboard`` is kept as an alias of
    ``log.tensorboard``. Each of ``wandb`` and ``mlflow`` is ``true`` (defaults),
    ``false`` or a table of settings."""
    f = Fields(table, "log")
    tb = f.get("tensorboard", bool, None)
    if tb is not None and tensorboard is not None and tb != tensorboard:
        raise ConfigError(
            "tensorboard: also set (differently) as log.tensorboard; keep log.tensorboard only"
        )
    wandb = _logger_table(f, "wandb")
    mlflow = _logger_table(f, "mlflow")
    f.done()
    wb = None
    if wandb is not None:
        w = Fields(wandb, "log.wandb")
        tags = w.get("tags", list, [])
        if not all(isinstance(t, str) and t for t in tags):
            raise ConfigError(f"log.wandb.tags: expected a list of strings, got {tags!r}")
        mode = w.choice("mode", ("online", "offline", "disabled")) if "mode" in w.table else None
        wb = WandbSettings(
            project=_nonempty(w, "project", "firepbt"),
            entity=_nonempty(w, "entity", None),
            group=_nonempty(w, "group", None),
            tags=tuple(tags),
            mode=mode,
        )
        w.done()
    ml = None
    if mlflow is not None:
        m = Fields(mlflow, "log.mlflow")
        ml = MlflowSettings(
            tracking_uri=_nonempty(m, "tracking_uri", None),
            experiment=_nonempty(m, "experiment", "firepbt"),
            run_name=_nonempty(m, "run_name", None),
        )
        m.done()
    on = tb if tb is not None else bool(tensorboard)
    return LogSettings(tensorboard=on, wandb=wb, mlflow=ml)


def _logger_table(f: Fields, key: str) -> dict[str, Any] | None:
    value = f.get(key, (bool, dict), False)
    if value is False:
        return None
    return {} if value is True else dict(value)


def _nonempty(f: Fields, key: str, default: str | None) -> Any:
    value = f.get(key, str, default)
    if value is not None and not value.strip():
        raise ConfigError(f"{f.name(key)}: must not be empty (leave it out for the default)")
    return value


def _devices(f: Fields) -> tuple[str, ...]:
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


def _simulated(table: Any) -> SimulatedSettings:
    f = Fields(table, "simulated")
    d = SimulatedSettings()
    out = SimulatedSettings(
        step_seconds=f.get("step_seconds", float, d.step_seconds),
        speed_sigma=f.get("speed_sigma", float, d.speed_sigma),
        stragglers=f.get("stragglers", float, d.stragglers),
        straggler_slowdown=f.get("straggler_slowdown", float, d.straggler_slowdown),
        failure_rate=f.get("failure_rate", float, d.failure_rate),
    )
    f.done()
    if not out.step_seconds > 0:
        raise ConfigError(
            f"simulated.step_seconds: virtual seconds per step must be > 0, got {out.step_seconds}"
        )
    if out.speed_sigma < 0:
        raise ConfigError(f"simulated.speed_sigma: must be >= 0, got {out.speed_sigma}")
    if not 0 <= out.stragglers <= 1:
        raise ConfigError(
            f"simulated.stragglers: a fraction of the workers, in [0, 1]; got {out.stragglers}"
        )
    if out.straggler_slowdown < 1:
        raise ConfigError(
            "simulated.straggler_slowdown: how many times slower a straggler is, >= 1; "
            f"got {out.straggler_slowdown}"
        )
    if not 0 <= out.failure_rate < 1:
        raise ConfigError(
            "simulated.failure_rate: a probability per attempt in [0, 1) (1 would fail every "
            f"task); got {out.failure_rate}"
        )
    return out


def _ray(table: Any, search_path: str | None) -> RaySettings:
    f = Fields(table, "ray")
    address = f.get("address", str, None)
    cpus = f.get("cpus", float, 1.0)
    gpus = f.get("gpus", float, 0.0)
    working_dir = f.get("working_dir", str, None)
    runtime_env = f.get("runtime_env", dict, None)
    node_wait = f.get("node_wait", float, 120.0)
    f.done()
    if working_dir is not None:
        path = Path(search_path or ".") / working_dir
        if not path.is_dir():
            raise ConfigError(f"ray.working_dir: {working_dir!r} is not a directory ({path})")
        working_dir = str(path.resolve())
    if runtime_env is not None and "working_dir" in runtime_env and working_dir is not None:
        raise ConfigError("ray.runtime_env: working_dir is given twice (also ray.working_dir)")
    if node_wait <= 0:
        raise ConfigError(f"ray.node_wait: must be > 0 seconds, got {node_wait}")
    if cpus < 0:
        raise ConfigError(f"ray.cpus: must be >= 0, got {cpus}")
    if gpus < 0:
        raise ConfigError(f"ray.gpus: must be >= 0, got {gpus}")
    if address is not None and not address.strip():
        raise ConfigError("ray.address: must not be empty (leave it out for a local Ray)")
    return RaySettings(
        address=address,
        cpus=float(cpus),
        gpus=float(gpus),
        working_dir=working_dir,
        runtime_env=runtime_env,
        node_wait=float(node_wait),
    )


def _truncation(f: Fields) -> float:
    value = f.get("truncation", float, 0.25)
    if not 0 < value <= 0.5:
        raise ConfigError(f"{f.name('truncation')}: must be in (0, 0.5], got {value}")
    return float(value)


def _init_sampling(f: Fields, default: str = "iid") -> str:
    return f.choice("init_sampling", ("iid", "stratified"), default)


def _algorithm(table: Any, space: SearchSpace) -> AlgorithmSettings:
    f = Fields(table, "algorithm")
    name = f.choice("name", ("fire", "pbt", "random"))
    settings: AlgorithmSettings
    if name == "random":
        settings = RandomSettings(
            population=f.positive_int("population", 16),
            schedule=_schedule(f, space),
            init_sampling=_init_sampling(f),
        )
    elif name == "pbt":
        population = f.positive_int("population", 16)
        if population < 4:
            raise ConfigError(
                f"algorithm.population: truncation selection needs at least 4 members, got {population}"
            )
        settings = PBTSettings(
            population=population, truncation=_truncation(f), init_sampling=_init_sampling(f)
        )
    else:
        n, size, sizes = _shape(f)
        parents = sum(sizes[1:])
        default_evaluators = max(1, (3 * parents) // 4)
        evaluators = f.positive_int("evaluators", default_evaluators)
        if evaluators > parents:
            raise ConfigError(
                f"algorithm.evaluators: {evaluators} evaluators but the parent sub-populations "
                f"P_2..P_{n} hold {parents} members, and each member has at most one "
                "evaluator at a time: the others could never work (SPEC 'FIRE PBT')"
            )
        gp_refit = f.get("gp_refit", float, 0.0)
        if gp_refit < 0:
            raise ConfigError(f"algorithm.gp_refit: must be >= 0 (0: exact), got {gp_refit}")
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
            init_sampling=_init_sampling(f, FireSettings.init_sampling),
            gp_refit=float(gp_refit),
            gp_workers=f.positive_int("gp_workers", 1),
            **_departures(f),
        )
    f.done()
    return settings


def _shape(f: Fields) -> tuple[int, int | tuple[int, ...], tuple[int, ...]]:
    """FIRE PBT's sub-populations: their number, ``subpopulation_size`` as given (an
    integer, or a tuple for the list form) and every size, P_1 first. The list form has
    one size per sub-population (e.g. ``[12, 6]``: a larger greedy P_1, issue 11's tenth
    pass); ``subpopulations``, if given, must equal its length."""
    raw = f.get("subpopulation_size", (int, list), 8)
    if isinstance(raw, list):
        if len(raw) < 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in raw):
            raise ConfigError(
                "algorithm.subpopulation_size: expected an integer or a list of at least 2 "
                f"integers (one per sub-population, P_1 first), got {raw!r}"
            )
        n = f.positive_int("subpopulations", len(raw))
        if n != len(raw):
            raise ConfigError(
                f"algorithm.subpopulations: {n}, but algorithm.subpopulation_size lists "
                f"{len(raw)} sizes (one per sub-population)"
            )
        sizes = tuple(int(v) for v in raw)
    else:
        n = f.positive_int("subpopulations", 2)
        sizes = (int(raw),) * n
    if n < 2:
        raise ConfigError(f"algorithm.subpopulations: FIRE PBT needs at least 2, got {n}")
    if min(sizes) < 4:
        got = raw if isinstance(raw, list) else min(sizes)
        raise ConfigError(
            "algorithm.subpopulation_size: truncation selection needs at least 4 members"
            f"{' in every sub-population' if isinstance(raw, list) else ''}, got {got}"
        )
    return n, (sizes if isinstance(raw, list) else sizes[0]), sizes


def _departures(f: Fields) -> dict[str, Any]:
    """FIRE PBT's settings beyond the paper (issue 11), validated."""
    resample = f.get("parent_resample", float, FireSettings.parent_resample)
    if not 0 <= resample <= 1:
        raise ConfigError(f"algorithm.parent_resample: must be in [0, 1], got {resample}")
    reseed = f.get("reseed_after", int, 0)
    if reseed < 0:
        raise ConfigError(f"algorithm.reseed_after: must be >= 0 (0: off), got {reseed}")
    patience = f.get("eval_patience", float, 1.0)
    if not patience >= 1:
        raise ConfigError(f"algorithm.eval_patience: must be >= 1 (1: off), got {patience}")
    protect = f.get("protect_steps", int, 0)
    if protect < 0:
        raise ConfigError(f"algorithm.protect_steps: must be >= 0 (0: off), got {protect}")
    finish = f.get("greedy_finish", float, 0.0)
    if not 0 <= finish < 1:
        raise ConfigError(f"algorithm.greedy_finish: must be in [0, 1) (0: off), got {finish}")
    stop = f.get("eval_stop", float, 0.0)
    if not 0 <= stop < 1:
        raise ConfigError(f"algorithm.eval_stop: must be in [0, 1) (0: off), got {stop}")
    power = f.get("parent_perturb_power", float, 1.0)
    if not power > 0:
        raise ConfigError(f"algorithm.parent_perturb_power: must be > 0 (1: off), got {power}")
    freeze = f.get("parent_freeze", float, 0.0)
    if not 0 <= freeze < 1:
        raise ConfigError(f"algorithm.parent_freeze: must be in [0, 1) (0: off), got {freeze}")
    greedy = f.get("greedy_sources", bool, False)
    smoothed = f.get("greedy_smoothed", bool, False)
    bar = f.choice("greedy_bar", ("top", "best", "union"), "top")
    for name, on in (("greedy_smoothed", smoothed), ("greedy_bar", bar != "top")):
        if on and not greedy:
            raise ConfigError(
                f"algorithm.{name}: changes how greedy_sources judges parent members; "
                "set algorithm.greedy_sources = true as well"
            )
    return {
        "parent_perturb_power": float(power),
        "parent_freeze": float(freeze),
        "rank_freed_parents": f.get("rank_freed_parents", bool, False),
        "parent_own_hparams": f.get("parent_own_hparams", bool, False),
        "phi": f.choice("phi", PHI_RULES, FireSettings.phi),
        "eval_stop": float(stop),
        "greedy_finish": float(finish),
        "parent_resample": float(resample),
        "reseed_after": int(reseed),
        "eval_patience": float(patience),
        "protect_steps": int(protect),
        "greedy_sources": greedy,
        "greedy_smoothed": smoothed,
        "greedy_bar": bar,
    }


def _schedule(f: Fields, space: SearchSpace) -> RelativeSchedule | None:
    table = f.get("schedule", dict, None)
    if table is None:
        return None
    s = Fields(table, "algorithm.schedule")
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
