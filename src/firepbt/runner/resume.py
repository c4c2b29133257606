"""``firepbt resume DIR``: continue a run whose controller died, from its last checkpoint.

Everything is checked read-only first; a refused resume (not a run, another format or
version, a changed config) raises :class:`~firepbt.core.errors.ConfigError` and leaves the
directory as it was. Then the newest checkpoint that verifies is loaded: a corrupted or
truncated one is never loaded, it is journalled (``checkpoint_corrupt``), renamed aside
(``*.corrupt``) and the previous good one is used, back to the start of the run if none
is good. The journal is cut back to the checkpoint's length and the run goes on; for a
deterministic trainable and the in-process executor it ends with the result.json of the
uninterrupted run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from firepbt._version import __version__
from firepbt.config import Config
from firepbt.core.errors import ConfigError
from firepbt.executors.base import Executor
from firepbt.runner.best import RESULT_FILE
from firepbt.runner.callbacks import CallbackLike
from firepbt.runner.checkpoint import (
    FORMAT,
    RUN_FILE,
    CheckpointStore,
    Loaded,
    Problem,
    ProblemError,
    lock_run,
)
from firepbt.runner.journal import EVENTS_FILE, prefix_sha256
from firepbt.runner.loop import Logger, Observer, Run


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key: old -> new`` for every field that differs (nested tables as dotted keys)."""
    out = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += config_diff(a, b, f"{name}.")
        elif a != b:
            out.append(f"{name}: {a!r} -> {b!r}")
    return out


def _first_event(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            line = fh.readline()
        return json.loads(line) if line.endswith("\n") else None
    except (OSError, ValueError):
        return None


def check_resumable(run_dir: Path, config: Config | None = None) -> tuple[Config, bool]:
    """The run's config and whether it already finished; ConfigError if it cannot resume."""
    info_path = run_dir / RUN_FILE
    if not info_path.is_file():
        extra = " (it has an events.jsonl: written before firepbt could resume?)"
        has_events = (run_dir / EVENTS_FILE).is_file()
        raise ConfigError(
            f"{run_dir}: not a firepbt run (no {RUN_FILE}){extra if has_events else ''}"
        )
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        fmt, version, stored = info["format"], info["firepbt_version"], info["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{run_dir}: not a firepbt run ({RUN_FILE} unreadable: {exc})") from None
    if fmt != FORMAT or version != __version__:
        raise ConfigError(
            f"{run_dir}: written by firepbt {version} (run format {fmt}); this is firepbt "
            f"{__version__} (run format {FORMAT}): resume it with the version that wrote it"
        )
    start = _first_event(run_dir / EVENTS_FILE)
    if start is not None and start.get("ev") == "start" and start.get("config") != stored:
        diff = "; ".join(config_diff(start["config"], stored))
        raise ConfigError(f"{run_dir}: {RUN_FILE} differs from the journal's config: {diff}")
    if config is not None:
        diff = "; ".join(config_diff(stored, config.to_dict()))
        if diff:
            raise ConfigError(f"{run_dir}: the config differs from the run's: {diff}")
    try:
        cfg = Config.from_dict(stored, search_path=info.get("search_path"))
    except ConfigError as exc:
        raise ConfigError(f"{run_dir}: {RUN_FILE}: {exc}") from None
    return cfg, (run_dir / RESULT_FILE).is_file()


def latest_good(store: CheckpointStore, config: Config) -> tuple[Loaded | None, list[Problem]]:
    """The newest checkpoint whose files and journal prefix verify, and the bad ones above it."""
    problems: list[Problem] = []
    journal = store.run_dir / EVENTS_FILE
    for seq in store.manifests():
        try:
            loaded = store.load(seq, config.to_dict())
        except ProblemError as exc:
            problems.append(exc.problem)
            continue
        if (
            not journal.is_file()
            or prefix_sha256(journal, loaded.journal_bytes) != loaded.journal_sha256
        ):
            problems.append(Problem(seq, EVENTS_FILE, "journal does not match the checkpoint"))
            continue
        return loaded, problems
    return None, problems


def resume(
    run_dir: str | Path,
    *,
    config: Config | None = None,
    executor: Executor | None = None,
    log: Logger | None = None,
    trainable_cls: type | None = None,
    observers: list[Observer] | None = None,
    callbacks: list[CallbackLike] | None = None,
    config_callbacks: Callable[[Config], list[CallbackLike]] | None = None,
) -> dict[str, Any] | None:
    """Continue the run in ``run_dir``; None (and nothing changed) if it already finished.

    ``config_callbacks(config)`` builds the loggers the run's own config asks for (the
    reporting layer passes it: see :func:`firepbt.api.resume`); they come before
    ``callbacks``.
    """
    out = Path(run_dir)
    cfg, finished = check_resumable(out, config)
    if finished:
        return None
    lock = lock_run(out)  # a live controller keeps it: refused, nothing modified
    try:
        extra = config_callbacks(cfg) if config_callbacks else []
        run = Run(
            cfg,
            out,
            executor=executor,
            log=log,
            trainable_cls=trainable_cls,
            observers=observers,
            callbacks=[*extra, *(callbacks or [])],
        )
    except BaseException:
        if lock is not None:
            lock.close()
        raise
    run.lock = lock  # released when the run ends
    store = run.store or CheckpointStore(out)
    loaded, problems = latest_good(store, cfg)
    fallback = loaded.seq if loaded else None

    def set_aside() -> None:
        """After the problems are journalled: rename bad files, so that a later checkpoint
        can never reuse them, and drop the checkpoints of the future being regenerated."""
        for p in problems:
            bad = out / p.file
            if bad.is_file() and p.file != EVENTS_FILE:
                bad.replace(bad.with_name(bad.name + ".corrupt"))
        for seq in store.manifests():
            if loaded is None or seq > loaded.seq:
                store.manifest_path(seq).unlink()

    if log:
        where = f"checkpoint {loaded.seq}" if loaded else "the start (no good checkpoint)"
        for p in problems:
            log(f"checkpoint {p.seq}: {p.file}: {p.problem}")
        log(f"resuming {out} from {where}")
    return run.resume(loaded, [p.event(fallback) for p in problems], set_aside)
