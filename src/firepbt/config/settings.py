"""The validated experiment: :class:`Config` and the settings tables it holds.

Every key is documented in the README ("Configuration reference"). Parsing and
validation live in :mod:`firepbt.config.parse`; each error names the field it is about
(``algorithm.evaluators: must be >= 1``) and is raised as
:class:`~firepbt.core.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from firepbt.algorithms.random_search import RelativeSchedule
from firepbt.core.space import SearchSpace


@dataclass(frozen=True)
class RandomSettings:
    """``[algorithm]`` with ``name = "random"``: ``population`` workers, an optional relative schedule."""

    name: str = "random"
    population: int = 16
    schedule: RelativeSchedule | None = None
    init_sampling: str = "iid"  # or "stratified": a Latin hypercube of initial draws

    @property
    def workers(self) -> int:
        return self.population


@dataclass(frozen=True)
class PBTSettings:
    """``[algorithm]`` with ``name = "pbt"``: one population under truncation selection."""

    name: str = "pbt"
    population: int = 16
    truncation: float = 0.25
    init_sampling: str = "iid"  # or "stratified": a Latin hypercube of initial draws

    @property
    def workers(self) -> int:
        return self.population


#: FireSettings.phi: "assigned" (the paper's Φ), "checked" (a parent is ranked for its
#: evolution only once its evaluator has been checked; the same decisions synchronously)
PHI_RULES = ("assigned", "checked")


@dataclass(frozen=True)
class FireSettings:
    """``[algorithm]`` with ``name = "fire"``: sub-populations, evaluators and their tests (SPEC "FIRE PBT")."""

    name: str = "fire"
    subpopulations: int = 2
    # one size for every sub-population, or one per sub-population, P_1 first (the list
    # form, e.g. (12, 6): a larger greedy P_1 where greed may be right; issue 11, tenth
    # pass)
    subpopulation_size: int | tuple[int, ...] = 8
    evaluators: int = 6
    max_eval_steps: int = 7200
    p_stat: float = 0.01
    min_steps_before_eval: tuple[int, ...] = ()  # one per parent sub-population P_2..P_n
    truncation: float = 0.25
    smooth: bool = True
    # The one departure from the paper on by default (issue 11, fifth pass: it helped or
    # was neutral on every benchmark): each sub-population's initial draws are a Latin
    # hypercube of the initial distribution (SearchSpace.sample_stratified); "iid":
    # independent draws, the paper's
    init_sampling: str = "stratified"
    # The other departures from the paper (issue 11; SPEC "FIRE PBT"), off (the paper's)
    # by default. parent_resample = 0.25 was the default after the first sweep; 10 seeds
    # showed it hurts MNIST-1D and PPO
    parent_resample: float = 0.0  # parents' explore resamples from the prior this often
    reseed_after: int = 0  # steps without a success before a parent P_i reseeds from P_{i-1}
    eval_patience: float = 1.0  # no overlap: wait up to this x max_eval_steps while closing
    protect_steps: int = 0  # a member that got an evaluator's weights is safe this long
    greedy_sources: bool = False  # P_1's losers may copy parents' members as good by Q
    greedy_smoothed: bool = False  # ... judged by their GP-smoothed Q (needs greedy_sources)
    greedy_bar: str = "top"  # ... against P_1's top quarter, its best, or the union's top
    eval_stop: float = 0.0  # no evaluator assigned in this last fraction of the steps
    greedy_finish: float = 0.0  # last fraction of the steps: all members ranked by Q at once
    parent_perturb_power: float = 1.0  # parents' explore factors raised to this power
    parent_freeze: float = 0.0  # last fraction of the steps: parents lose no evolution event
    rank_freed_parents: bool = False  # Φ keeps parents whose evaluator was freed this round
    parent_own_hparams: bool = False  # a parent that loses keeps (explores) its own hparams
    # which parents are ranked for exploit-and-explore (PHI_RULES): "checked" (a departure,
    # the default since the twelfth pass of issue 11: those whose evaluator has been
    # checked at least once, the Φ a synchronous ready point ranks, so the same decisions
    # in synchronous mode), or "assigned", the paper's Φ taken literally (an evaluator now)
    phi: str = "checked"
    # GP hyperparameters are refitted once a curve has grown by this fraction since its
    # last fit, and kept (posterior mean only) in between; 0: refit at every smoothing,
    # the exact empirical Bayes of SPEC "Smoothing" (issue 12; benchmarks/RESULTS.md)
    gp_refit: float = 0.0
    # processes for the GP fits of a sync ready point (1: in the controller); the fits are
    # the same to the last bit, so the decisions are too (core/curves.fit_in_parallel)
    gp_workers: int = 1

    @property
    def sizes(self) -> tuple[int, ...]:
        """Members of P_1, P_2, ..., P_n."""
        if isinstance(self.subpopulation_size, tuple):
            return self.subpopulation_size
        return (self.subpopulation_size,) * self.subpopulations

    @property
    def workers(self) -> int:
        return sum(self.sizes) + self.evaluators


AlgorithmSettings = RandomSettings | PBTSettings | FireSettings
EXECUTORS = ("inprocess", "processes", "ray", "simulated")
# SPEC "The best network": "highest", the paper's (the highest Q any worker recorded);
# "final" (a departure, issue 11; the default since the seventh pass: it helped or was
# neutral on every benchmark): the best final Q of P_1's members, the networks the run
# ends with (runner/best.py)
BEST_RULES = ("highest", "final")
# SPEC "The budget and the end": "all", the SPEC's rule (the run ends when every member
# of every sub-population has reached the budget); "p1" (a departure, the default since
# issue 12's twelfth pass): an asynchronous run ends when every member of P_1 has, and
# the parents and evaluators still training are stopped then. The same end in
# synchronous mode, where every member reaches the budget at once, and for PBT and random
# search, whose P_1 is the whole population (runner/drivers.py)
END_RULES = ("all", "p1")


@dataclass(frozen=True)
class SimulatedSettings:
    """The ``[simulated]`` table: the virtual cluster of the simulated executor."""

    step_seconds: float = 1.0  # virtual seconds per training step of a worker of speed 1
    speed_sigma: float = 0.25  # sigma of the log-normal worker speeds (median 1)
    stragglers: float = 0.05  # fraction of the workers that are straggler_slowdown x slower
    straggler_slowdown: float = 3.0
    failure_rate: float = 0.0  # probability that one attempt of a task fails part-way


@dataclass(frozen=True)
class RaySettings:
    """The ``[ray]`` table: where Ray runs and what each worker actor reserves."""

    address: str | None = None  # None: start a local Ray on loopback with the machine's CPUs
    cpus: float = 1.0  # per worker actor
    gpus: float = 0.0  # per worker actor; fractions share a GPU (0.5: two actors per GPU)
    # code shipped to the nodes (a Ray runtime_env for the whole run): a directory (given
    # relative to the config file, stored absolute) and/or a runtime_env table (py_modules,
    # pip, env_vars, ...) passed to Ray as it is
    working_dir: str | None = None
    runtime_env: dict[str, Any] | None = None
    node_wait: float = 120.0  # seconds to wait for room on the cluster once every actor is lost

    def env(self) -> dict[str, Any] | None:
        """The runtime_env the run's Ray job is started with (None: none)."""
        env = dict(self.runtime_env or {})
        if self.working_dir is not None:
            env["working_dir"] = self.working_dir
        return env or None


@dataclass(frozen=True)
class WandbSettings:
    """``[log.wandb]``: Weights & Biases logging (:mod:`firepbt.report.wandb`)."""

    project: str = "firepbt"
    entity: str | None = None  # None: the logged-in user's default entity
    group: str | None = None  # None: the run directory's name
    tags: tuple[str, ...] = ()
    mode: str | None = None  # online, offline or disabled; None: wandb's (WANDB_MODE)


@dataclass(frozen=True)
class MlflowSettings:
    """``[log.mlflow]``: MLflow tracking (:mod:`firepbt.report.mlflow`)."""

    tracking_uri: str | None = None  # None: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db
    experiment: str = "firepbt"
    run_name: str | None = None  # None: the run directory's name


@dataclass(frozen=True)
class LogSettings:
    """The ``[log]`` table: which loggers (callbacks, :mod:`firepbt.runner.callbacks`) run."""

    tensorboard: bool = False  # write DIR/tensorboard/ (firepbt.report.tensorboard)
    wandb: WandbSettings | None = None
    mlflow: MlflowSettings | None = None

    def to_dict(self) -> dict[str, Any]:
        """The table as the config dict holds it (unset settings left out)."""
        out: dict[str, Any] = {"tensorboard": self.tensorboard}
        if self.wandb is not None:
            wb = {k: v for k, v in asdict(self.wandb).items() if v is not None}
            wb["tags"] = list(self.wandb.tags)
            out["wandb"] = wb
        if self.mlflow is not None:
            out["mlflow"] = {k: v for k, v in asdict(self.mlflow).items() if v is not None}
        return out


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
    best: str = "final"  # which network is the run's best: BEST_RULES
    end: str = "p1"  # whose budget ends an asynchronous run: END_RULES
    executor: str = "inprocess"
    slots: int | None = None  # workers training at once; None: CPU count, or one per device
    devices: tuple[str, ...] = ()  # one device per slot (process executor), e.g. cuda:0
    max_retries: int = 3  # re-runs of a task whose worker process or actor died
    task_timeout: float | None = None  # seconds one task may run (None: no limit)
    ray: RaySettings = field(default_factory=RaySettings)
    simulated: SimulatedSettings = field(default_factory=SimulatedSettings)
    log: LogSettings = field(default_factory=LogSettings)  # the [log] table: loggers
    checkpoints: bool = True  # checkpoint at each ready point (``firepbt resume``)
    keep_best_checkpoints: bool = False  # keep the best network's weights after the run
    search_path: str | None = None  # prepended to sys.path to import the trainable

    @property
    def workers(self) -> int:
        return self.algorithm.workers

    @property
    def tensorboard(self) -> bool:
        """``log.tensorboard`` (the top-level ``tensorboard = true`` is an alias)."""
        return self.log.tensorboard

    def with_seed(self, seed: int) -> Config:
        """This config with another experiment seed."""
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """The config as the JSON-able table it was read from (journalled, checkpointed, in result.json)."""
        algo = asdict(self.algorithm)
        if isinstance(self.algorithm, FireSettings):
            algo["min_steps_before_eval"] = list(self.algorithm.min_steps_before_eval)
            if isinstance(self.algorithm.subpopulation_size, tuple):  # one size per P_i
                algo["subpopulation_size"] = list(self.algorithm.subpopulation_size)
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
            # always written: a journal without it was written before the setting existed,
            # under the paper's rule (report.plot_data reads it so)
            "best": self.best,
            "end": self.end,
            "executor": self.executor,
            "devices": list(self.devices),
            "max_retries": self.max_retries,
            "ray": {k: v for k, v in asdict(self.ray).items() if v is not None},
            **({"simulated": asdict(self.simulated)} if self.executor == "simulated" else {}),
            "log": self.log.to_dict(),
            "checkpoints": self.checkpoints,
            "keep_best_checkpoints": self.keep_best_checkpoints,
            "args": dict(self.args),
            **({} if self.slots is None else {"slots": self.slots}),
            **({} if self.task_timeout is None else {"task_timeout": self.task_timeout}),
            "space": self.space.to_dict(),
            "algorithm": algo,
        }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, search_path: str | None = None) -> Config:
        """Validate a config table (as read from TOML); raises ConfigError naming the field."""
        from firepbt.config.parse import config_from_dict

        return config_from_dict(data, search_path=search_path)
