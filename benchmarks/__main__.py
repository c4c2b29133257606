"""``python -m benchmarks [--quick] [--out DIR] [--only NAME ...] [--procs N]``.

Runs random search, PBT and FIRE PBT at equal compute over several seeds on every
benchmark, replays each run's best schedule (inside the run), and writes
``DIR/report.md``, ``DIR/report.json`` and the figures (PNG). ``--quick`` shrinks every
benchmark (fewer seeds, steps, workers, dimensions) to check the pipeline in CI, not
the numbers.
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per process, set before numpy loads: the workers run side by
# side, and threaded BLAS under oversubscription made the GP fits of FIRE PBT's curve
# comparisons about 3x slower on a loaded 2-core machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks import mnist1d, nqm, ppo  # noqa: E402
from benchmarks.common import Benchmark  # noqa: E402
from benchmarks.suite import run_all, write_report  # noqa: E402


def all_benchmarks(quick: bool) -> list[Benchmark]:
    return [*nqm.benchmarks(quick), *mnist1d.benchmarks(quick), *ppo.benchmarks(quick)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the pipeline only")
    p.add_argument("--out", default=None, help="report directory (default bench-report[-quick])")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    p.add_argument("--procs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--report-only", action="store_true",
                   help="write the report from the finished runs in --out; run nothing")  # fmt: skip
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = p.parse_args(argv)
    benches = all_benchmarks(args.quick)
    if args.list:
        for b in benches:
            print(f"{b.name:14s} {b.title}")
        return 0
    if args.only:
        unknown = set(args.only) - {b.name for b in benches}
        if unknown:
            p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        benches = [b for b in benches if b.name in args.only]
    out = Path(args.out or ("bench-report-quick" if args.quick else "bench-report"))
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    t0 = time.perf_counter()
    wall = 0.0 if args.report_only else run_all(benches, out, args.procs)
    write_report(benches, out, command.strip(), wall)
    print(f"wrote {out}/report.md in {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
