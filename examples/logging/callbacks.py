"""Watch a run from Python: a callback of your own next to the config's loggers.

    python examples/logging/callbacks.py runs/nqm-callbacks [KEY=VALUE ...]

runs ``nqm_logging.toml`` (its ``[log]`` loggers included; overrides such as
``steps=200`` or ``log.wandb=false`` as for ``firepbt run --set``) with two callbacks:
``WeightCopies`` prints every exploit and evaluator success as it happens and writes
them to ``DIR/weight_copies.csv``; a plain function counts the results.
"""

import csv
import sys
from pathlib import Path

import firepbt
from firepbt.runner.callbacks import Callback, RunInfo
from firepbt.runner.events import Copy, Event, Result

HERE = Path(__file__).parent


class WeightCopies(Callback):
    """Every weight copy that moved a network (exploit, evaluator success)."""

    def on_run_start(self, info: RunInfo) -> None:
        self.roles = info.roles
        self.path = info.out_dir / "weight_copies.csv"
        self.file = open(self.path, "a", newline="")  # noqa: SIM115  (closed at the end)
        self.csv = csv.writer(self.file)
        if not info.resumed:
            self.csv.writerow(["step", "reason", "from", "to"])

    def on_decision(self, event) -> None:
        if isinstance(event, Copy) and event.reason in ("exploit", "success"):
            src = self.roles[event.src].name(event.src)
            dst = self.roles[event.dst].name(event.dst)
            print(f"step {event.step}: {event.reason} {src} -> {dst}", flush=True)
            self.csv.writerow([event.step, event.reason, src, dst])

    def on_run_end(self, info: RunInfo, result: dict | None) -> None:
        self.file.close()
        if result is not None:
            print(f"best {result['best']['score']:.4g}; copies in {self.path}")


def main(out: str, *overrides: str) -> None:
    config = firepbt.load_config(HERE / "nqm_logging.toml", list(overrides))
    results = 0

    def count(event: Event) -> None:
        nonlocal results
        if isinstance(event, Result):
            results += 1

    firepbt.run(config, out, callbacks=[WeightCopies(), count])
    print(f"{results} results")


if __name__ == "__main__":
    main(*sys.argv[1:])
