"""The public entry points: a run, or a resumed one, with the reporting the config asks for.

:func:`run` and :func:`resume` join the run loop (:mod:`firepbt.runner`) with the
observers its config switches on (``tensorboard = true``, :mod:`firepbt.report`). They
sit above both layers, so that the loop never imports its own reporting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firepbt.config import Config
from firepbt.executors.base import Executor
from firepbt.report.notices import Notices
from firepbt.report.observers import observers_for
from firepbt.runner import loop
from firepbt.runner import resume as resuming
from firepbt.runner.best import load_best
from firepbt.runner.loop import Logger, Observer

__all__ = ["load_best", "resume", "run"]


def run(
    config: Config,
    out_dir: str | Path,
    *,
    executor: Executor | None = None,
    log: Logger | None = None,
    trainable_cls: type | None = None,
    observers: list[Observer] | None = None,
    notices: bool = True,
) -> dict[str, Any]:
    """Run one experiment to the end and return its result (also written to ``out_dir``).

    ``observers`` are called with every journalled event, followed by those the config
    asks for; a missing optional package for one of them raises ConfigError first.
    ``notices``: print what needs attention on stderr (the first traceback of each
    distinct error in the trainable's code, worker faults and timeouts; see
    :mod:`firepbt.report.notices`). A bug in the trainable's code (no network ever
    trained) stops the run with :class:`~firepbt.core.errors.UserCodeError`.
    """
    return loop.run(
        config,
        out_dir,
        executor=executor,
        log=log,
        trainable_cls=trainable_cls,
        observers=[
            *(observers or []),
            *observers_for(config, out_dir),
            *([Notices()] if notices else []),
        ],
    )


def resume(
    run_dir: str | Path,
    *,
    config: Config | None = None,
    executor: Executor | None = None,
    log: Logger | None = None,
    trainable_cls: type | None = None,
    observers: list[Observer] | None = None,
    notices: bool = True,
) -> dict[str, Any] | None:
    """Continue the run in ``run_dir`` from its last good checkpoint (README "Durability").

    Returns None, and changes nothing, if the run already finished. ``notices`` as for
    :func:`run` (and where the run resumed from, with its best score so far).
    """
    return resuming.resume(
        run_dir,
        config=config,
        executor=executor,
        log=log,
        trainable_cls=trainable_cls,
        observers=[*(observers or []), *([Notices()] if notices else [])],
        config_observers=lambda cfg: observers_for(cfg, run_dir),
    )
