"""The run loop: results -> decider -> commands -> executor, every step journalled.

One loop joins the pure deciders (:mod:`firepbt.algorithms`), an executor
(:mod:`firepbt.executors`) and the journal (:mod:`firepbt.journal`). Randomness comes
from one seed: ``SeedSequence(seed)`` is spawned into the decider's stream, the
workers' seeds and the replay seed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path
from typing import IO, Any

import numpy as np

from firepbt import __version__
from firepbt.algorithms.base import Assign, Command, CopyWeights, Decider, Free, SetHparams
from firepbt.algorithms.fire import FirePBT
from firepbt.algorithms.pbt import PBT
from firepbt.algorithms.random_search import RandomSearch
from firepbt.checkpoint import CheckpointStore, Loaded, atomic_write, lock_run, write_run_info
from firepbt.config import Config, FireSettings, PBTSettings, RandomSettings
from firepbt.errors import ConfigError
from firepbt.executors import make_executor
from firepbt.executors.base import Executor, Task, TaskResult
from firepbt.journal import EVENTS_FILE, Journal
from firepbt.lineage import Lineage
from firepbt.observers import observers_for
from firepbt.trainable import TrainableSpec

RESULT_FILE = "result.json"
Logger = Callable[[str], None]
Observer = Callable[[dict[str, Any]], None]


def make_decider(config: Config, rng: np.random.Generator) -> Decider:
    a = config.algorithm
    if isinstance(a, RandomSettings):
        return RandomSearch(
            config.space,
            a.population,
            rng,
            steps=config.steps,
            eval_interval=config.eval_interval,
            schedule=a.schedule,
            mode=config.mode,
        )
    if isinstance(a, PBTSettings):
        return PBT(
            config.space,
            rng,
            subpopulations=[a.population],
            truncation=a.truncation,
            mode=config.mode,
        )
    assert isinstance(a, FireSettings)
    return FirePBT(
        config.space,
        rng,
        subpopulations=[a.subpopulation_size] * a.subpopulations,
        evaluators=a.evaluators,
        steps=config.steps,
        max_eval_steps=a.max_eval_steps,
        p_stat=a.p_stat,
        min_steps_before_eval=[0, *a.min_steps_before_eval],
        truncation=a.truncation,
        mode=config.mode,
        smooth=a.smooth,
    )


def seeds_for(seed: int, workers: int) -> tuple[np.random.Generator, list[int], int]:
    """The decider's generator, one seed per worker and the replay seed."""
    algo, work, replay = np.random.SeedSequence(seed).spawn(3)
    worker_seeds = [int(s) for s in work.generate_state(workers, dtype=np.uint32)]
    return np.random.default_rng(algo), worker_seeds, int(replay.generate_state(1)[0])


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
    ) -> None:
        self.config = config
        self.config_dict = config.to_dict()  # journalled, checkpointed and in result.json
        self.observers = [*(observers or []), *observers_for(config, out_dir)]
        self.out = Path(out_dir)
        self.spec = TrainableSpec(config.trainable, config.args, config.search_path, trainable_cls)
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
        self.since_ready = [0] * n
        self.evaluating: set[int] = set()
        self.lineage = Lineage(n)
        self.best: dict[str, Any] | None = None
        self.best_p1: dict[str, Any] | None = None
        self.counts = {"exploit": 0, "assign": 0, "success": 0, "stop": 0, "diverged": 0}
        self.journal: Journal | None = None
        # durable state (issue 5): the loop's position, checkpointed with everything above
        self.elapsed = 0  # sync: steps every active worker trained
        self.last_log = 0  # async: the slowest member's step at the last ready point
        self.ready_points = 0  # ready points of the population so far = checkpoint number
        self.checkpointed = 0
        self.pending: list[Task] = []  # submitted, not yet handled, in submission order
        self.best_state: Any = None  # the best network's weights (keep_best_checkpoints)
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
            raise ConfigError(f"--out: {self.out} already holds a run; choose another directory")
        self.start_executor()  # a trainable that cannot be built fails before anything is written
        self.out.mkdir(parents=True, exist_ok=True)
        write_run_info(self.out, self.config)
        self.lock = lock_run(self.out)
        self.journal = Journal(self.out / EVENTS_FILE)
        self.emit(self.start_event())
        return self.drive(None)

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
        if loaded is None:
            self.emit(self.start_event())
        else:
            self.restore(loaded.loop)
            if loaded.best_state is not None and self.store is not None:
                self.best_state = self.store.read_blob(loaded.best_state)
        for note in notes:
            self.emit(note)
        journalled()
        self.emit(
            {"ev": "resume", "checkpoint": loaded.seq if loaded else None, "step": max(self.step)}
        )
        return self.drive(loaded)

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

    def drive(self, loaded: Loaded | None) -> dict[str, Any]:
        assert self.journal is not None
        t0 = time.perf_counter()
        try:
            if not self.started:
                self.start_executor()
            if loaded is None:
                self.apply(self.decider.start())
            else:
                for w, state in enumerate(loaded.states):
                    self.executor.set_state(w, state)
                for task in self.pending:
                    self.executor.submit(task)
            if self.config.mode == "sync":
                self.loop_sync()
            else:
                self.loop_async()
            self.emit({"ev": "end", "step": max(self.step)})
        finally:
            self.executor.close()
            self.journal.close()
            if self.lock is not None:
                self.lock.close()
        result = self.result()
        seconds = time.perf_counter() - t0
        atomic_write(self.out / RESULT_FILE, (json.dumps(result, indent=2) + "\n").encode())
        stats = self.checkpoint_stats
        timing = {
            "wall_seconds": seconds,
            "checkpoints": len(stats),
            "checkpoint_seconds": sum(t for t, _ in stats),
            "checkpoint_bytes": sum(b for _, b in stats),
        }
        (self.out / "timing.json").write_text(json.dumps(timing) + "\n")
        if self.store is not None:
            self.store.finish(self.best_state, self.describe(self.best))
        return result

    def emit(self, event: dict[str, Any]) -> None:
        """Journal an event, then show it to the observers (live view, TensorBoard)."""
        assert self.journal is not None
        self.journal.write(event)
        for observer in self.observers:
            observer(event)

    def members_left(self) -> list[int]:
        return [w.id for w in self.decider.members() if self.step[w.id] < self.config.steps]

    def active(self) -> list[int]:
        return self.members_left() + sorted(self.evaluating)

    def loop_sync(self) -> None:
        """All workers train one evaluation interval, then (at ready points) decide together."""
        cfg = self.config
        while self.members_left():
            self.checkpoint()
            for w in self.active():
                self.submit(w)
            for r in sorted(self.executor.wait(every=True), key=lambda r: r.worker):
                self.handle(r)
            self.elapsed += cfg.eval_interval
            if self.elapsed % cfg.ready_interval == 0 and self.members_left():
                ready = self.active()
                self.apply(self.decider.on_ready(ready))
                self.ready_points += 1
                self.progress(self.elapsed)

    def loop_async(self) -> None:
        """Each worker decides alone when ready, against the latest state of the others.

        The population's ready points, where it is checkpointed, are the steps at which
        the slowest member crosses a multiple of ``ready_interval``.
        """
        cfg = self.config
        while self.members_left():
            self.checkpoint()
            for w in self.active():
                if not self.busy[w]:
                    self.submit(w)
            results = self.executor.wait(every=False)
            if not results:
                break
            for r in results:
                if not self.handle(r):
                    continue
                w = r.worker
                self.since_ready[w] += r.steps
                is_member = self.decider.workers[w].role == "member"
                if is_member and self.step[w] >= cfg.steps:
                    continue
                if self.since_ready[w] >= cfg.ready_interval:
                    self.since_ready[w] = 0
                    self.apply(self.decider.on_ready([w]))
            done = min(self.step[m.id] for m in self.decider.members())
            if done - self.last_log >= cfg.ready_interval:
                self.last_log = done
                self.ready_points += 1
                self.progress(done)

    # -- durable state (issue 5) -------------------------------------------------------

    def checkpoint(self) -> None:
        """Checkpoint at the top of the loop after a ready point: a consistent state.

        In sync mode every worker is idle there. In async mode the busy workers' tasks
        are recorded (``pending``, in submission order) and resubmitted on resume; the
        in-process executor runs queued tasks lazily, so ``get_state`` of a busy worker is
        its state before that task, and the resumed run is the same run.
        """
        if self.store is None or self.ready_points == self.checkpointed:
            return
        assert self.journal is not None
        t0 = time.perf_counter()
        self.checkpointed = self.ready_points
        self.journal.sync()
        written = self.store.save(
            self.ready_points,
            journal_bytes=self.journal.bytes,
            journal_sha256=self.journal.sha256,
            config=self.config_dict,
            loop=self.snapshot(),
            states=[self.executor.get_state(w) for w in range(len(self.step))],
            best_state=self.best_state,
            step=max(self.step),
        )
        self.checkpoint_stats.append((time.perf_counter() - t0, written))

    def snapshot(self) -> dict[str, Any]:
        """Everything the loop and the decider know (pickled: see :mod:`firepbt.checkpoint`)."""
        return {
            "decider": self.decider,
            "step": self.step,
            "net": self.net,
            "hparams": self.hparams,
            "token": self.token,
            "busy": self.busy,
            "since_ready": self.since_ready,
            "evaluating": sorted(self.evaluating),
            "lineage": self.lineage,
            "best": self.best,
            "best_p1": self.best_p1,
            "counts": self.counts,
            "elapsed": self.elapsed,
            "last_log": self.last_log,
            "ready_points": self.ready_points,
            "checkpointed": self.checkpointed,
            "pending": [astuple(t) for t in self.pending],
        }

    def restore(self, loop: dict[str, Any]) -> None:
        for key in (
            "decider",
            "step",
            "net",
            "hparams",
            "token",
            "busy",
            "since_ready",
            "lineage",
            "best",
            "best_p1",
            "counts",
            "elapsed",
            "last_log",
            "ready_points",
            "checkpointed",
        ):
            setattr(self, key, loop[key])
        self.evaluating = set(loop["evaluating"])
        self.pending = [Task(*t) for t in loop["pending"]]

    # -- carrying out ------------------------------------------------------------------

    def submit(self, w: int) -> None:
        self.busy[w] = True
        task = Task(w, self.token[w], self.config.eval_interval, dict(self.hparams[w]))
        self.pending.append(task)
        self.executor.submit(task)

    def invalidate(self, w: int) -> None:
        """A queued or running task of ``w`` no longer belongs to the network it holds."""
        if self.busy[w]:
            self.executor.cancel(w)
            self.pending = [t for t in self.pending if t.worker != w]
        self.token[w] += 1
        self.busy[w] = False

    def handle(self, r: TaskResult) -> bool:
        """Record a task's result; False when it is stale."""
        w = r.worker
        for fault in r.faults:  # a worker process or actor died (executors/pool.py)
            self.emit({"ev": "fault", **fault})
        if r.token != self.token[w]:
            return False
        assert self.journal is not None
        self.busy[w] = False
        self.pending = [t for t in self.pending if t.worker != w]
        start = self.step[w]
        self.step[w] = start + r.steps
        self.lineage.train(self.net[w], start, self.step[w], r.hparams)
        finite = math.isfinite(r.score)
        q = self.sign * r.score if finite else math.nan
        worker = self.decider.workers[w]
        test = None
        if finite and (self.best is None or q > self.best["q"]):
            test = self.executor.test(w)
            self.best = self.record(w, q, r.score, test)
            if self.config.keep_best_checkpoints:
                self.best_state = self.executor.get_state(w)
        if finite and worker.role == "member" and worker.subpop == 1:
            if self.best_p1 is None or q > self.best_p1["q"]:
                if test is None:
                    test = self.executor.test(w)
                self.best_p1 = self.record(w, q, r.score, test)
        if not finite:
            self.counts["diverged"] += 1
        event: dict[str, Any] = {
            "ev": "result",
            "worker": w,
            "net": self.net[w],
            "start": start,
            "step": self.step[w],
            "hparams": r.hparams,
            "score": r.score if finite else None,
        }
        if test is not None:
            event["test"] = test
        if r.error:
            event["error"] = r.error
        self.emit(event)
        self.apply(self.decider.on_result(w, self.step[w], q))
        return True

    def record(self, w: int, q: float, score: float, test: float | None) -> dict[str, Any]:
        worker = self.decider.workers[w]
        return {
            "q": q,
            "score": score,
            "test": test,
            "member": w,
            "role": worker.role,
            "subpopulation": worker.subpop or None,
            "step": self.step[w],
            "net": self.net[w],
        }

    def apply(self, cmds: list[Command]) -> None:
        assert self.journal is not None
        for cmd in cmds:
            # Journal before effect: every decision is written (and flushed) before the
            # loop or the executor acts on it, so a killed controller never leaves an
            # effect the journal does not explain.
            if isinstance(cmd, SetHparams):
                self.emit(
                    {
                        "ev": "hparams",
                        "worker": cmd.worker,
                        "net": self.net[cmd.worker],
                        "step": self.step[cmd.worker],
                        "hparams": cmd.hparams,
                        "reason": cmd.reason,
                    }
                )
                self.hparams[cmd.worker] = dict(cmd.hparams)
            elif isinstance(cmd, CopyWeights):
                src, dst = cmd.src, cmd.dst
                new = len(self.lineage.nets)  # the id the fork below gives
                self.emit(
                    {
                        "ev": "copy",
                        "src": src,
                        "dst": dst,
                        "step": self.step[src],
                        "src_net": self.net[src],
                        "net": new,
                        "reason": cmd.reason,
                    }
                )
                self.invalidate(dst)
                self.executor.copy(src, dst)
                self.lineage.fork(self.net[src], self.step[src])
                self.net[dst] = new
                self.step[dst] = self.step[src]
                if cmd.reason in ("exploit", "success"):
                    self.counts[cmd.reason] += 1
            elif isinstance(cmd, Assign):
                self.emit(
                    {
                        "ev": "assign",
                        "evaluator": cmd.evaluator,
                        "parent": cmd.parent,
                        "target": cmd.target,
                    }
                )
                self.evaluating.add(cmd.evaluator)
                self.since_ready[cmd.evaluator] = 0
                self.counts["assign"] += 1
            elif isinstance(cmd, Free):
                self.emit({"ev": "free", "evaluator": cmd.evaluator, "reason": cmd.reason})
                self.evaluating.discard(cmd.evaluator)
                self.invalidate(cmd.evaluator)
                if cmd.reason == "stop":
                    self.counts["stop"] += 1
        checks = getattr(self.decider, "checks", None)
        if checks:
            for c in checks:
                self.emit({"ev": "check", **c})
            checks.clear()

    def progress(self, step: int) -> None:
        best = "-" if self.best is None else f"{self.best['score']:.6g}"
        c = self.counts
        self.log(
            f"step {step}/{self.config.steps}  best {best}  exploits {c['exploit']}  "
            f"evaluator successes {c['success']}/{c['assign']}"
        )

    # -- the end ----------------------------------------------------------------------

    def describe(self, rec: dict[str, Any] | None) -> dict[str, Any] | None:
        if rec is None:
            return None
        schedule = self.lineage.schedule(rec["net"], rec["step"])
        out = {k: v for k, v in rec.items() if k not in ("q", "net")}
        out["schedule"] = schedule
        return out

    def result(self) -> dict[str, Any]:
        best = self.describe(self.best)
        replay = None
        if self.config.replay and best is not None:
            replay = replay_schedule(
                self.spec, best["schedule"], self.replay_seed, self.config.eval_interval
            )
        cfg = self.config
        return {
            "firepbt_version": __version__,
            "algorithm": cfg.algorithm.name,
            "mode": cfg.mode,
            "seed": cfg.seed,
            "workers": cfg.workers,
            "direction": cfg.direction,
            "steps": cfg.steps,
            "best": best,
            "best_p1": self.describe(self.best_p1),
            "replay": replay,
            "counts": dict(self.counts),
            "config": self.config_dict,
        }


def replay_schedule(
    spec: TrainableSpec, schedule: list[dict[str, Any]], seed: int, chunk: int
) -> dict[str, float | None]:
    """Train a fresh network along ``schedule`` (SPEC "Lineage and schedules")."""
    net = spec.build(seed)
    for seg in schedule:
        left = seg["end"] - seg["start"]
        while left > 0:
            k = min(chunk, left)
            net.train(k, dict(seg["hparams"]))
            left -= k
    score = float(net.evaluate())
    test = float(net.test()) if callable(getattr(net, "test", None)) else None
    return {
        "score": score if math.isfinite(score) else None,
        "test": test if test is None or math.isfinite(test) else None,
    }


def run(
    config: Config,
    out_dir: str | Path,
    *,
    executor: Executor | None = None,
    log: Logger | None = None,
    trainable_cls: type | None = None,
    observers: list[Observer] | None = None,
) -> dict[str, Any]:
    """Run one experiment to the end and return its result (also written to ``out_dir``)."""
    return Run(
        config,
        out_dir,
        executor=executor,
        log=log,
        trainable_cls=trainable_cls,
        observers=observers,
    ).execute()
