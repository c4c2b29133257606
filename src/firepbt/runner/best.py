"""The best network (SPEC "The best network") and the run's result.

With ``best = "highest"`` (the paper's rule, Section 4: "the highest recorded validation
score throughout training") the experiment's best is the highest Q recorded by any
worker. With ``best = "final"`` (a departure, issue 11; the default since the seventh
pass) it is the highest *final* Q of P_1's members: the networks the run ends with, in
the sub-population that FIRE PBT keeps as its "current best effort" (Section 4.1; for
PBT and random search P_1 is the whole population). Where Q is a noisy estimate, as an
RL agent's training return is, the highest of hundreds of readings is mostly luck (a
winner's curse): it picks early readings of networks trained at rates too high to keep,
and FIRE PBT's parent members and evaluators, which train for improvement rate, not for
their current Q. If no member of P_1 ends with a finite Q, the final rule falls back to
P_1's highest reading, and the result says so. The best of P_1 alone (any step) is kept
under both rules. The result holds both, with their schedules, and the replay of the
best schedule.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firepbt._version import __version__
from firepbt.core.errors import UserCodeError

if TYPE_CHECKING:
    from firepbt.runner.loop import Run

RESULT_FILE = "result.json"


def final_candidate(role: str, subpop: int | None, step: int, steps: int) -> bool:
    """Whether a reading may be the best network under ``best = "final"``: a member of
    P_1 that has reached the budget (the same test for the journal's readers)."""
    return role == "member" and subpop == 1 and step >= steps


class BestSoFar:
    """The run's best by its ``best`` rule, taken from results as they come, for what is
    shown while a run goes and after it: the live view, the trackers' ``best_Q`` and the
    figures (the same pick as :func:`chosen` and ``Run.best_so_far``, the progress
    lines). Under ``"final"`` no network is the best before P_1's members reach the
    budget, so until then (and if none ends with a finite score) it is P_1's highest
    reading. ``item`` is what the caller keeps with a score (a worker, an event)."""

    def __init__(self, rule: str = "highest", steps: int = 0, direction: str = "max") -> None:
        self.rule, self.steps = rule, steps
        self.sign = -1.0 if direction == "min" else 1.0
        self.best: tuple[float, Any] | None = None  # the rule's pick
        self.best_p1: tuple[float, Any] | None = None  # P_1's highest reading

    def offer(self, score: float | None, role: str, subpop: int | None, step: int,
              item: Any = None) -> bool:  # fmt: skip
        """Take a result in; True when :meth:`chosen` changed."""
        if score is None:
            return False
        before = self.chosen()
        if (self.rule == "highest" or final_candidate(role, subpop, step, self.steps)) and (
            self.best is None or self.sign * score > self.sign * self.best[0]
        ):
            self.best = (float(score), item)
        if (role, subpop) == ("member", 1) and (
            self.best_p1 is None or self.sign * score > self.sign * self.best_p1[0]
        ):
            self.best_p1 = (float(score), item)
        return self.chosen() is not before

    def chosen(self) -> tuple[float, Any] | None:
        """(score, item) of the best so far; None before any finite score."""
        return self.best if self.best is not None else self.best_p1


def track_best(run: Run, w: int, q: float, score: float) -> float | None:
    """Update the best networks with worker ``w``'s finite Q; its test score if taken."""
    worker = run.decider.workers[w]
    test = None
    eligible = run.config.best == "highest" or final_candidate(
        worker.role, worker.subpop, run.step[w], run.config.steps
    )
    if eligible and (run.best is None or q > run.best["q"]):
        test = tested(run, w)
        run.best = record(run, w, q, score, test)
        if run.config.keep_best_checkpoints:
            run.best_state = run.executor.get_state(w)
    if worker.role == "member" and worker.subpop == 1:
        if run.best_p1 is None or q > run.best_p1["q"]:
            if test is None:
                test = tested(run, w)
            run.best_p1 = record(run, w, q, score, test)
    run.journal_faults()  # a worker lost or timed out while it tested
    return test


def tested(run: Run, w: int) -> float | None:
    """Worker ``w``'s test score; a raise in the user's ``test()`` is journalled (an
    ``abort`` event with its traceback) and stops the run (UserCodeError)."""
    try:
        return run.executor.test(w)
    except UserCodeError as exc:
        stop_for_bug(run, exc, "test", w)
        raise


def stop_for_bug(run: Run, exc: UserCodeError, during: str, worker: int | None) -> None:
    """Journal why the run stops: the user's ``test()`` raised ``during`` a test or the
    replay (the faults journalled first, as the executor saw them)."""
    run.journal_faults()
    run.emit(
        {
            "ev": "abort",
            "reason": "user_error",
            "during": during,
            "worker": worker,
            "message": str(exc),
            "traceback": exc.traceback,
        }
    )


def record(run: Run, w: int, q: float, score: float, test: float | None) -> dict[str, Any]:
    worker = run.decider.workers[w]
    return {
        "q": q,
        "score": score,
        "test": test,
        "member": w,
        "role": worker.role,
        "subpopulation": worker.subpop or None,
        "step": run.step[w],
        "net": run.net[w],
    }


def describe(run: Run, rec: dict[str, Any] | None) -> dict[str, Any] | None:
    if rec is None:
        return None
    schedule = run.lineage.schedule(rec["net"], rec["step"])
    out = {k: v for k, v in rec.items() if k not in ("q", "net")}
    out["schedule"] = schedule
    return out


def chosen(run: Run) -> dict[str, Any] | None:
    """The run's best network's record: ``run.best``, or under ``best = "final"`` with no
    finite final reading in P_1, P_1's highest reading (marked ``fallback``)."""
    if run.best is not None or run.config.best == "highest" or run.best_p1 is None:
        return run.best
    return {**run.best_p1, "fallback": "no member of P_1 ended with a finite Q"}


def replay_best(run: Run) -> dict[str, float | None] | None:
    """Replay the best network's schedule from scratch, through the run's executor (on a
    worker, where the hardware is, not in the controller), before the executor closes."""
    best = describe(run, chosen(run))
    if not run.config.replay or best is None:
        return None
    try:
        return run.executor.replay(
            run.spec, run.replay_seed, best["schedule"], run.config.eval_interval
        )
    except UserCodeError as exc:
        stop_for_bug(run, exc, "replay", None)
        raise


def build_result(run: Run) -> dict[str, Any]:
    best = describe(run, chosen(run))
    cfg = run.config
    return {
        "firepbt_version": __version__,
        "algorithm": cfg.algorithm.name,
        "mode": cfg.mode,
        "seed": cfg.seed,
        "workers": cfg.workers,
        "direction": cfg.direction,
        "steps": cfg.steps,
        "best_rule": cfg.best,
        "best": best,
        "best_p1": describe(run, run.best_p1),
        "replay": run.replayed,
        "counts": dict(run.counts),
        "errors": run.failures.summary(),
        "config": run.config_dict,
    }


def load_best(run_dir: str | Path, *, trainable_cls: type | None = None) -> Any:
    """The run's best network: a trainable built with the run's ``args`` (and the best
    member's seed), loaded with the weights kept at the end of the run.

    The run must have kept them: ``keep_best_checkpoints = true`` (and ``checkpoints``)
    writes ``checkpoints/best.json`` and the weights' blob, verified by SHA-256 here.
    ``trainable_cls`` replaces the class the config names (as for :func:`firepbt.run`).
    Raises :class:`~firepbt.core.errors.ConfigError` when there is nothing to load.
    """
    from firepbt.config import Config
    from firepbt.core.errors import ConfigError
    from firepbt.core.trainable import TrainableSpec
    from firepbt.runner.checkpoint import RUN_FILE, CheckpointStore, sha256
    from firepbt.runner.setup import seeds_for

    out = Path(run_dir)
    info_path = out / RUN_FILE
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        config = Config.from_dict(info["config"], search_path=info.get("search_path"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{out}: not a firepbt run ({RUN_FILE}: {exc})") from None
    store = CheckpointStore(out)
    best_path = store.root / "best.json"
    if not best_path.is_file():
        why = (
            "the run has not finished"
            if not (out / RESULT_FILE).is_file()
            else "it ran without keep_best_checkpoints = true"
            if not config.keep_best_checkpoints
            else "it recorded no finite score"
        )
        raise ConfigError(
            f"{out}: no best network was kept ({best_path} is missing: {why}); run with "
            "keep_best_checkpoints = true to keep it, or replay the best schedule "
            "(firepbt replay)"
        )
    doc = json.loads(best_path.read_text(encoding="utf-8"))
    try:
        data = (store.root / doc["best_state"]).read_bytes()
    except (OSError, KeyError, TypeError) as exc:
        raise ConfigError(f"{out}: the best network's weights are unreadable ({exc})") from None
    if sha256(data) != doc.get("sha256"):
        raise ConfigError(f"{out}: the best network's weights fail their SHA-256 check")
    state = pickle.loads(data)  # noqa: S301  (verified; see firepbt.runner.checkpoint)
    member = int((doc.get("best") or {}).get("member") or 0)
    _, seeds, _ = seeds_for(config.seed, config.workers)
    spec = TrainableSpec(config.trainable, config.args, config.search_path, trainable_cls)
    net = spec.build(seeds[member])
    net.load_state_dict(state)
    return net
