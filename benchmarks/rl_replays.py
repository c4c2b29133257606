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


def _one(run_dir: str) -> tuple[str, float, bool]:
    """(run, mean replay return, whether it was replayed now rather than cached)."""
    cache = Path(run_dir) / "replays.json"
    before = cache.stat().st_mtime_ns if cache.exists() else None
    mean = replays(Path(run_dir))["mean"]
    return run_dir, mean, cache.stat().st_mtime_ns != before


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="the sweep directory")
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--only", nargs="+", metavar="BENCH", help="some RL benchmarks only")
    args = p.parse_args(argv)
    names = [b.name for b in benchmarks(quick=False)]
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            print(f"rl_replays: unknown RL benchmark(s) {', '.join(unknown)} "
                  f"(known: {', '.join(names)})", file=sys.stderr)  # fmt: skip
            return 2
        names = [n for n in names if n in args.only]
    benches = [args.out / n for n in names if (args.out / n).is_dir()]
    if not benches:
        print(f"rl_replays: no {' or '.join(names)} runs under {args.out}", file=sys.stderr)
        return 2
    runs = sorted(str(d) for b in benches for d in b.iterdir() if (d / "result.json").exists())
    t0 = time.time()
    new = 0
    with ProcessPoolExecutor(args.procs) as pool:
        for run_dir, mean, fresh in pool.map(_one, runs):
            new += fresh
            print(f"{Path(run_dir).name}: {mean:.1f}{'' if fresh else ' (cached)'}", flush=True)
    print(f"{new} runs replayed, {len(runs) - new} cached, in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
