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
from pathlib import Path
from typing import Any

import numpy as np

from firepbt import __version__
from firepbt.algorithms.base import Assign, Command, CopyWeights, Decider, Free, SetHparams
from firepbt.algorithms.fire import FirePBT
from firepbt.algorithms.pbt import PBT
from firepbt.algorithms.random_search import RandomSearch
from firepbt.config import Config, FireSettings, PBTSettings, RandomSettings
from firepbt.errors import ConfigError
from firepbt.executors.base import Executor, Task, TaskResult
from firepbt.executors.inprocess import InProcessExecutor
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
        self.observers = [*(observers or []), *observers_for(config, out_dir)]
        self.out = Path(out_dir)
        self.spec = TrainableSpec(config.trainable, config.args, config.search_path, trainable_cls)
        self.spec.resolve()  # an unimportable trainable fails here, before anything is written
        self.executor = executor or InProcessExecutor()
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

    # -- the loop ------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        if (self.out / EVENTS_FILE).exists():
            raise ConfigError(f"--out: {self.out} already holds a run; choose another directory")
        self.out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        self.journal = Journal(self.out / EVENTS_FILE)
        self.emit(
            {
                "ev": "start",
                "version": __version__,
                "workers": len(self.decider.workers),
                "roles": [[w.role, w.subpop] for w in self.decider.workers],
                "seeds": self.worker_seeds,
                "config": self.config.to_dict(),
            }
        )
        try:
            self.executor.start(self.spec, self.worker_seeds)
            self.apply(self.decider.start())
            if self.config.mode == "sync":
                self.loop_sync()
            else:
                self.loop_async()
            self.emit({"ev": "end", "step": max(self.step)})
        finally:
            self.executor.close()
            self.journal.close()
        result = self.result()
        seconds = time.perf_counter() - t0
        (self.out / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        (self.out / "timing.json").write_text(json.dumps({"wall_seconds": seconds}) + "\n")
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
        elapsed = 0
        while self.members_left():
            for w in self.active():
                self.submit(w)
            for r in sorted(self.executor.wait(every=True), key=lambda r: r.worker):
                self.handle(r)
            elapsed += cfg.eval_interval
            if elapsed % cfg.ready_interval == 0 and self.members_left():
                ready = self.active()
                self.apply(self.decider.on_ready(ready))
                self.progress(elapsed)

    def loop_async(self) -> None:
        """Each worker decides alone when ready, against the latest state of the others."""
        cfg = self.config
        last_log = 0
        while self.members_left():
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
            if done - last_log >= cfg.ready_interval:
                last_log = done
                self.progress(done)

    # -- carrying out ------------------------------------------------------------------

    def submit(self, w: int) -> None:
        self.busy[w] = True
        self.executor.submit(
            Task(w, self.token[w], self.config.eval_interval, dict(self.hparams[w]))
        )

    def invalidate(self, w: int) -> None:
        """A queued or running task of ``w`` no longer belongs to the network it holds."""
        if self.busy[w]:
            self.executor.cancel(w)
        self.token[w] += 1
        self.busy[w] = False

    def handle(self, r: TaskResult) -> bool:
        """Record a task's result; False when it is stale."""
        w = r.worker
        if r.token != self.token[w]:
            return False
        assert self.journal is not None
        self.busy[w] = False
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
            if isinstance(cmd, SetHparams):
                self.hparams[cmd.worker] = dict(cmd.hparams)
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
            elif isinstance(cmd, CopyWeights):
                src, dst = cmd.src, cmd.dst
                self.invalidate(dst)
                self.executor.copy(src, dst)
                new = self.lineage.fork(self.net[src], self.step[src])
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
                self.net[dst] = new
                self.step[dst] = self.step[src]
                if cmd.reason in ("exploit", "success"):
                    self.counts[cmd.reason] += 1
            elif isinstance(cmd, Assign):
                self.evaluating.add(cmd.evaluator)
                self.since_ready[cmd.evaluator] = 0
                self.counts["assign"] += 1
                self.emit(
                    {
                        "ev": "assign",
                        "evaluator": cmd.evaluator,
                        "parent": cmd.parent,
                        "target": cmd.target,
                    }
                )
            elif isinstance(cmd, Free):
                self.evaluating.discard(cmd.evaluator)
                self.invalidate(cmd.evaluator)
                if cmd.reason == "stop":
                    self.counts["stop"] += 1
                self.emit({"ev": "free", "evaluator": cmd.evaluator, "reason": cmd.reason})
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
            "config": cfg.to_dict(),
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
