"""The public entry points: a run, or a resumed one, with the loggers the config asks for.

:func:`run` and :func:`resume` join the run loop (:mod:`firepbt.runner`) with the
callbacks its config's ``[log]`` table switches on (TensorBoard, Weights & Biases,
MLflow: :mod:`firepbt.report`) and the ones passed in. They sit above both layers, so
that the loop never imports its own reporting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firepbt.config import Config
from firepbt.executors.base import Executor
from firepbt.report.notices import Notices
from firepbt.report.observers import callbacks_for
from firepbt.runner import loop
from firepbt.runner import resume as resuming
from firepbt.runner.best import load_best
from firepbt.runner.callbacks import CallbackLike
from firepbt.runner.loop import Logger, Observer

__all__ = ["load_best", "resume", "run"]


def run(
    config: Config,
    out_dir: str | Path,
    *,
    callbacks: list[CallbackLike] | None = None,
    executor: Executor | None = None,
    log: Logger | None = None,
    trainable_cls: type | None = None,
    observers: list[Observer] | None = None,
    notices: bool = True,
) -> dict[str, Any]:
    """Run one experiment to the end and return its result (also written to ``out_dir``).

    ``callbacks``: :class:`~firepbt.runner.callbacks.Callback` objects, or functions of
    one :class:`~firepbt.runner.events.Event`, that watch the run (see
    :mod:`firepbt.runner.callbacks` for when each hook is called and what a callback may
    do); they are called after the loggers the config's ``[log]`` table asks for, whose
    optional packages are checked first (a missing one raises ConfigError before
    anything is written). ``observers``: a low-level hook, functions of each journal
    line as a dict, whose exceptions stop the run (the tests simulate crashes with
    them); prefer callbacks.
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
        observers=[*(observers or []), *([Notices()] if notices else [])],
        callbacks=[*callbacks_for(config, out_dir), *(callbacks or [])],
    )


def resume(
    run_dir: str | Path,
    *,
    config: Config | None = None,
    callbacks: list[CallbackLike] | None = None,
    executor: Executor | None = None,
    log: Logger | None = None,
    trainable_cls: type | None = None,
    observers: list[Observer] | None = None,
    notices: bool = True,
) -> dict[str, Any] | None:
    """Continue the run in ``run_dir`` from its last good checkpoint (README "Durability").

    The loggers of the run's own config continue their runs (W&B, MLflow); ``callbacks``
    are told ``resumed`` and the journal so far (:class:`~firepbt.runner.callbacks.RunInfo`).
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
        callbacks=callbacks,
        config_callbacks=lambda cfg: list(callbacks_for(cfg, run_dir)),
    )
