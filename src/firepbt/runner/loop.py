"""The run loop: results -> decider -> commands -> executor, every step journalled.

One loop joins the pure deciders (:mod:`firepbt.algorithms`), an executor
(:mod:`firepbt.executors`) and the journal (:mod:`firepbt.runner.journal`). The
:class:`Run` is assembled from rooms of one concern each: carrying out commands
(:mod:`~firepbt.runner.commands`), the synchronous and asynchronous drivers
(:mod:`~firepbt.runner.drivers`), the durable state (:mod:`~firepbt.runner.state`), the
best network and the result (:mod:`~firepbt.runner.best`); replay lives in
:mod:`~firepbt.runner.replay`, the decider and seeds in :mod:`~firepbt.runner.setup`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from firepbt._version import __version__
from firepbt.config import Config
from firepbt.core.errors import ConfigError, ExecutorError
from firepbt.core.trainable import TrainableSpec
from firepbt.executors import make_executor
from firepbt.executors.base import Executor, Task
from firepbt.runner.best import RESULT_FILE, build_result, describe, replay_best
from firepbt.runner.callbacks import CallbackLike, CallbackList, RunInfo
from firepbt.runner.checkpoint import (
    RUN_FILE,
    CheckpointStore,
    Loaded,
    atomic_write,
    lock_run,
    write_run_info,
)
from firepbt.runner.commands import apply
from firepbt.runner.drivers import drive_async, drive_sync
from firepbt.runner.events import Event, WorkerRole, parse_event
from firepbt.runner.failures import Failures
from firepbt.runner.journal import EVENTS_FILE, Journal, read_events
from firepbt.runner.lineage import Lineage
from firepbt.runner.setup import make_decider, seeds_for
from firepbt.runner.state import restore

__all__ = ["RESULT_FILE", "Logger", "Observer", "Run", "run"]

Logger = Callable[[str], None]
Observer = Callable[[dict[str, Any]], None]


def describe_existing(out: Path) -> str:
    """What ``--out`` already holds, and what to do about it."""
    if (out / RESULT_FILE).is_file():
        return "already holds a finished run; choose another directory"
    if (out / RUN_FILE).is_file():
        return (
            f"already holds an unfinished run: continue it with `firepbt resume {out}`, "
            "or choose another directory"
        )
    return (
        "already holds a run that cannot be resumed (no run.json: checkpoints were off); "
        "choose another directory"
    )


class Run:
    """One experiment: carries out a decider's commands on an executor."""

    def __init__(
        self,
        config: Config,
        out_dir: str | Path,
        *,
        executor: Executor | None = None,
        log: Logger | None = None,
        trainable_cls: type | None = None,
        observers: list[Observer] | None = None,
        callbacks: list[CallbackLike] | None = None,
    ) -> None:
        self.config = config
        self.config_dict = config.to_dict()  # journalled, checkpointed and in result.json
        # Raw observers get the journal's dicts and their exceptions stop the run (tests
        # use them to simulate a crash); callbacks get typed events and cannot stop it
        # (firepbt.runner.callbacks).
        self.observers = list(observers or [])
        self.callbacks = CallbackList(callbacks or [])
        self.out = Path(out_dir)
        self.spec = TrainableSpec(
            config.trainable,
            config.args,
            config.search_path,
            trainable_cls,
            hparams=tuple(config.space.names),  # checked against accepted_hparams at start
        )
        self.spec.resolve()  # an unimportable trainable fails here, before anything is written
        self.executor = executor or make_executor(config)
        self.log = log or (lambda msg: None)
        self.sign = 1.0 if config.direction == "max" else -1.0
        rng, self.worker_seeds, self.replay_seed = seeds_for(config.seed, config.workers)
        self.decider = make_decider(config, rng)
        n = len(self.decider.workers)
        self.step = [0] * n
        self.net = list(range(n))
        self.hparams: list[dict[str, Any]] = [{} for _ in range(n)]
        self.token = [0] * n
        self.busy = [False] * n
        # workers that became idle since the async driver last submitted (not checkpointed:
        # the driver starts from every worker)
        self.woken: set[int] = set()
        self.since_ready = [0] * n
        self.evaluating: set[int] = set()
        self.lineage = Lineage(n)
        self.best: dict[str, Any] | None = None
        self.best_p1: dict[str, Any] | None = None
        self.counts = {"exploit": 0, "assign": 0, "success": 0, "stop": 0, "diverged": 0}
        self.failures = Failures()  # the user's code's errors (runner/failures.py)
        self.journal: Journal | None = None
        # durable state (issue 5): the loop's position, checkpointed with everything above
        self.elapsed = 0  # sync: steps every active worker trained
        self.last_log = 0  # async: the slowest member's step at the last ready point
        self.ready_points = 0  # ready points of the population so far = checkpoint number
        self.checkpointed = 0
        # submitted, not yet handled, in submission order (by worker: O(1) to drop one)
        self.pending: dict[int, Task] = {}
        self.best_state: Any = None  # the best network's weights (keep_best_checkpoints)
        self.replayed: dict[str, float | None] | None = None  # the best schedule, replayed
        self.store: CheckpointStore | None = None
        if config.checkpoints:
            self.store = CheckpointStore(self.out, keep_best=config.keep_best_checkpoints)
        self.checkpoint_stats: list[tuple[float, int]] = []  # (seconds, bytes written)
        self.lock: IO[bytes] | None = None  # held on run.json while this controller runs

    # -- the loop ------------------------------------------------------------------

    def start_event(self) -> dict[str, Any]:
        return {
            "ev": "start",
            "version": __version__,
            "workers": len(self.decider.workers),
            "roles": [[w.role, w.subpop] for w in self.decider.workers],
            "seeds": self.worker_seeds,
            "config": self.config_dict,
        }

    def execute(self) -> dict[str, Any]:
        if (self.out / EVENTS_FILE).exists():
            raise ConfigError(f"--out: {self.out} {describe_existing(self.out)}")
        self.start_executor()  # a trainable that cannot be built fails before anything is written
        self.out.mkdir(parents=True, exist_ok=True)
        write_run_info(self.out, self.config)
        self.lock = lock_run(self.out)
        self.journal = Journal(self.out / EVENTS_FILE)
        return self.with_callbacks(self.run_info(), lambda: self.drive(None, start=True))

    def resume(
        self,
        loaded: Loaded | None,
        notes: list[dict[str, Any]],
        journalled: Callable[[], None] = lambda: None,
    ) -> dict[str, Any]:
        """Continue from checkpoint ``loaded`` (None: from the start), journalling ``notes``
        and then calling ``journalled`` (which acts on them: journal before effect).

        The journal is cut back to its length when the checkpoint was taken: the events
        after it are regenerated, identically for a deterministic executor.
        """
        self.start_executor()
        path = self.out / EVENTS_FILE
        path.touch()
        self.journal = Journal(path, keep_bytes=loaded.journal_bytes if loaded else 0)
        info = self.run_info(resumed=True, checkpoint=loaded.seq if loaded else None)

        def go() -> dict[str, Any]:
            if loaded is None:
                self.emit(self.start_event())
            else:
                restore(self, loaded.loop)
                if loaded.best_state is not None and self.store is not None:
                    self.best_state = self.store.read_entry(loaded.best_state)
            for observer in self.observers:  # a raw observer that shows the run catches up
                catch_up = getattr(observer, "catch_up", None)
                if callable(catch_up) and loaded is not None:
                    catch_up(read_events(path))
            for note in notes:
                self.emit(note)
            journalled()
            self.emit(
                {
                    "ev": "resume",
                    "checkpoint": loaded.seq if loaded else None,
                    "step": max(self.step),
                    "steps": self.config.steps,
                    "best": self.best_so_far(),
                }
            )
            return self.drive(loaded)

        return self.with_callbacks(info, go)

    def run_info(self, *, resumed: bool = False, checkpoint: int | None = None) -> RunInfo:
        """What callbacks are told at the start (on resume: the journal so far)."""
        history: tuple[Event, ...] = ()
        if resumed and self.callbacks:
            history = tuple(parse_event(ev) for ev in read_events(self.out / EVENTS_FILE))
        roles = tuple(WorkerRole(w.role, w.subpop or None) for w in self.decider.workers)
        return RunInfo(self.out, self.config, roles, resumed, checkpoint, history)

    def with_callbacks(self, info: RunInfo, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``body`` between the callbacks' ``on_run_start`` and ``on_run_end``."""
        self.callbacks.run_start(info)
        try:
            result = body()
        except BaseException:
            self.callbacks.run_end(None)
            raise
        self.callbacks.run_end(result)
        return result

    started = False

    def start_executor(self) -> None:
        """Build every worker's trainable; a failure is the user's config (ConfigError)."""
        try:
            self.executor.start(self.spec, self.worker_seeds)
        except ConfigError:
            self.executor.close()
            raise
        except Exception as exc:
            self.executor.close()
            raise ConfigError(
                f"args: building the trainable {self.config.trainable}(seed, **args) failed "
                f"({type(exc).__name__}: {exc})"
            ) from None
        self.started = True

    def drive(self, loaded: Loaded | None, *, start: bool = False) -> dict[str, Any]:
        assert self.journal is not None
        t0 = time.perf_counter()
        try:
            if start:
                self.emit(self.start_event())
            if not self.started:
                self.start_executor()
            if loaded is None:
                apply(self, self.decider.start())
            else:
                for w, state in enumerate(loaded.states):
                    self.executor.set_state(w, state)
                for task in self.pending.values():
                    self.executor.submit(task)
            if self.config.mode == "sync":
                drive_sync(self)
            else:
                drive_async(self)
            self.emit({"ev": "end", "step": max(self.step)})
            try:
                self.replayed = replay_best(self)
            finally:
                self.journal_faults()  # a worker lost or timed out during the replay
        except ExecutorError as exc:  # every worker lost: journal what was lost, then stop
            for fault in exc.faults:
                self.emit({"ev": "fault", **fault})
            raise
        finally:
            try:
                if self.store is not None:
                    self.store.wait()  # the last checkpoint's files are written
            finally:
                self.executor.close()
                self.journal.close()
            if self.lock is not None:
                self.lock.close()
        result = build_result(self)
        seconds = time.perf_counter() - t0
        atomic_write(self.out / RESULT_FILE, (json.dumps(result, indent=2) + "\n").encode())
        stats = self.checkpoint_stats
        timing = {
            "wall_seconds": seconds,
            "checkpoints": len(stats),
            "checkpoint_seconds": sum(t for t, _ in stats),
            "checkpoint_bytes": sum(b for _, b in stats),
            # the background writes (fsyncs), while the run went on
            "checkpoint_write_seconds": sum(t for t, _ in self.store.writes) if self.store else 0,
            **self.executor.timing(),  # the simulated executor's virtual clock and compute
        }
        (self.out / "timing.json").write_text(json.dumps(timing) + "\n")
        if self.store is not None:
            self.store.finish(self.best_state, describe(self, self.best))
        return result

    def emit(self, event: dict[str, Any]) -> None:
        """Journal an event, then show it to the observers and the callbacks."""
        assert self.journal is not None
        self.journal.write(event)
        for observer in self.observers:
            observer(event)
        if self.callbacks:
            self.callbacks.event(parse_event(event))

    def journal_faults(self) -> None:
        """Journal the faults that happened outside a task (during a test or a replay):
        tasks' faults come with their results (``handle``)."""
        for fault in self.executor.take_faults():
            self.emit({"ev": "fault", **fault})

    def members_left(self) -> list[int]:
        return [w.id for w in self.decider.members() if self.step[w.id] < self.config.steps]

    def active(self) -> list[int]:
        return self.members_left() + sorted(self.evaluating)

    def best_so_far(self) -> float | None:
        """The best score so far, for the progress lines: under ``best = "final"`` no
        network is the best before the members reach the budget, so P_1's highest."""
        rec = self.best if self.best is not None else self.best_p1
        return None if rec is None else float(rec["score"])

    def progress(self, step: int) -> None:
        so_far = self.best_so_far()
        best = "-" if so_far is None else f"{so_far:.6g}"
        c = self.counts
        self.log(
            f"step {step}/{self.config.steps}  best {best}  exploits {c['exploit']}  "
            f"evaluator successes {c['success']}/{c['assign']}"
        )


def run(
    config: Config,
    out_dir: str | Path,
    *,
    executor: Executor | None = None,
    log: Logger | None = None,
    trainable_cls: type | None = None,
    observers: list[Observer] | None = None,
    callbacks: list[CallbackLike] | None = None,
) -> dict[str, Any]:
    """Run one experiment to the end and return its result (also written to ``out_dir``)."""
    return Run(
        config,
        out_dir,
        executor=executor,
        log=log,
        trainable_cls=trainable_cls,
        observers=observers,
        callbacks=callbacks,
    ).execute()
