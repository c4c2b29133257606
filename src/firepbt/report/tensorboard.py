"""TensorBoard logging (``[log] tensorboard = true``): every worker's Q and hyperparameters.

A callback (:mod:`firepbt.runner.callbacks`) that writes standard TensorBoard event files under
``DIR/tensorboard/`` (``tensorboard --logdir DIR`` shows them). Tags name the
sub-population and role: ``P1/member_3/Q``, ``P2/member_5/lr``,
``evaluators/evaluator_17/Q``. A scalar's step is the number of steps *that worker*
has trained so far, which only grows; the network's own step count (which jumps when
weights are copied in) is in the journal. Diverged scores (no Q) are not written;
only numeric hyperparameters are (a categorical one is in the journal).

It writes with tensorboard's own event-file writer and protobufs, so it needs the
``tensorboard`` package (``pip install firepbt[tensorboard]``) but not torch.

On ``firepbt resume`` it rebuilds each worker's step count from the journal up to the
checkpoint and writes on into a new event file in the same directory. The results
between that checkpoint and the crash are regenerated and written again at the same
steps: the same points for a deterministic run; where they differ, TensorBoard shows
both (the journal holds the ones that count).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from firepbt.core.errors import ConfigError
from firepbt.runner.callbacks import Callback, RunInfo
from firepbt.runner.events import Result

TENSORBOARD_DIR = "tensorboard"


def tag_prefix(role: str, subpop: int, worker: int) -> str:
    """The tag prefix of a worker: ``P1/member_3`` or ``evaluators/evaluator_9``."""
    if role == "member":
        return f"P{subpop}/member_{worker}"
    return f"evaluators/evaluator_{worker}"


class TensorBoardLogger(Callback):
    """Writes a scalar per worker for Q and each numeric hyperparameter of every result."""

    def __init__(self, out_dir: str | Path) -> None:
        try:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:
            raise ConfigError(
                "log.tensorboard: needs the tensorboard package "
                "(pip install 'firepbt[tensorboard]')"
            ) from None
        self._writer_cls = EventFileWriter
        self.log_dir = Path(out_dir) / TENSORBOARD_DIR
        self.writer: Any = None  # created at the run's start, not before
        self.prefix: list[str] = []
        self.trained: dict[int, int] = {}

    def on_run_start(self, info: RunInfo) -> None:
        """Open the event file; on resume, recount each worker's trained steps."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.writer = self._writer_cls(str(self.log_dir), flush_secs=5)
        self.prefix = [tag_prefix(r.role, int(r.subpop or 0), w) for w, r in enumerate(info.roles)]
        for ev in info.history:  # resumed: each worker's trained steps at the checkpoint
            if isinstance(ev, Result):
                self.trained[ev.worker] = self.trained.get(ev.worker, 0) + ev.step - ev.start

    def on_result(self, event: Result) -> None:
        """Q and the numeric hyperparameters at the worker's trained steps."""
        w = event.worker
        step = self.trained.get(w, 0) + event.step - event.start
        self.trained[w] = step
        values = {"Q": event.score}
        values.update(event.hparams)
        self.write(self.prefix[w], step, values)

    def on_run_end(self, info: RunInfo, result: dict[str, Any] | None) -> None:
        """Flush and close the event file."""
        self.close()

    def write(self, prefix: str, step: int, values: dict[str, Any]) -> None:
        """One event with a scalar per numeric value, tagged ``prefix/name``."""
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        summary = Summary(
            value=[
                Summary.Value(tag=f"{prefix}/{name}", simple_value=float(v))
                for name, v in values.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            ]
        )
        if summary.value:
            self.writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))

    def close(self) -> None:
        """Close the writer (idempotent)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
