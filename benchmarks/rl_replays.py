"""Replay every finished run of the RL benchmarks of a sweep on ``REPLAY_SEEDS`` (issue 11).

The report (``python -m benchmarks --report-only``) replays each run's best schedule
itself, one run after another; with 24 replay seeds per run that is the slow part of
the report, so this script fills the same per-run cache (``replays.json``) on several
processes first. Runs already replayed on the current seeds are skipped.

    PYTHONPATH=src python -m benchmarks.rl_replays --out SWEEP --procs 2
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmarks.rl import benchmarks, replays


def _one(run_dir: str) -> tuple[str, float]:
    return run_dir, replays(Path(run_dir))["mean"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="the sweep directory")
    p.add_argument("--procs", type=int, default=2)
    args = p.parse_args(argv)
    names = [b.name for b in benchmarks(quick=False)]
    benches = [args.out / n for n in names if (args.out / n).is_dir()]
    if not benches:
        print(f"rl_replays: no {' or '.join(names)} runs under {args.out}", file=sys.stderr)
        return 2
    runs = sorted(str(d) for b in benches for d in b.iterdir() if (d / "result.json").exists())
    t0 = time.time()
    with ProcessPoolExecutor(args.procs) as pool:
        for run_dir, mean in pool.map(_one, runs):
            print(f"{Path(run_dir).name}: {mean:.1f}", flush=True)
    print(f"{len(runs)} runs replayed in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
