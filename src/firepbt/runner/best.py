"""The best network (SPEC "The best network") and the run's result.

The experiment's best is the highest Q recorded by any worker; the best of P_1 alone is
the paper's "current best effort". The result holds both, with their schedules, and the
replay of the best schedule.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firepbt._version import __version__

if TYPE_CHECKING:
    from firepbt.runner.loop import Run

RESULT_FILE = "result.json"


def track_best(run: Run, w: int, q: float, score: float) -> float | None:
    """Update the best networks with worker ``w``'s finite Q; its test score if taken."""
    worker = run.decider.workers[w]
    test = None
    if run.best is None or q > run.best["q"]:
        test = run.executor.test(w)
        run.best = record(run, w, q, score, test)
        if run.config.keep_best_checkpoints:
            run.best_state = run.executor.get_state(w)
    if worker.role == "member" and worker.subpop == 1:
        if run.best_p1 is None or q > run.best_p1["q"]:
            if test is None:
                test = run.executor.test(w)
            run.best_p1 = record(run, w, q, score, test)
    return test


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


def replay_best(run: Run) -> dict[str, float | None] | None:
    """Replay the best network's schedule from scratch, through the run's executor (on a
    worker, where the hardware is, not in the controller), before the executor closes."""
    best = describe(run, run.best)
    if not run.config.replay or best is None:
        return None
    return run.executor.replay(
        run.spec, run.replay_seed, best["schedule"], run.config.eval_interval
    )


def build_result(run: Run) -> dict[str, Any]:
    best = describe(run, run.best)
    cfg = run.config
    return {
        "firepbt_version": __version__,
        "algorithm": cfg.algorithm.name,
        "mode": cfg.mode,
        "seed": cfg.seed,
        "workers": cfg.workers,
        "direction": cfg.direction,
        "steps": cfg.steps,
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
