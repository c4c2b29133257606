"""``python -m benchmarks [--quick] [--out DIR] [--only NAME ...] [--procs N]
[--seeds 0-9] [--methods M ...] [--variants V ...]``.

Runs random search, PBT and FIRE PBT at equal compute over several seeds on every
benchmark, replays each run's best schedule (inside the run), and writes
``DIR/report.md``, ``DIR/report.json`` and the figures (PNG). ``--quick`` shrinks every
benchmark (fewer seeds, steps, workers, dimensions) to check the pipeline in CI, not
the numbers.

Seed sweeps (issue 11): ``--seeds 0-9`` (or ``0,1,5``) replaces every selected
benchmark's seeds; ``--variants reseed patience`` adds FIRE PBT variants
(:mod:`benchmarks.variants`) as methods ``fire@<variant>``; ``--methods`` keeps only the
named methods (``random pbt fire fire@reseed``). The report then adds a seed-sweep
table (mean, median, worst seed, fraction of seeds on which each FIRE PBT beats PBT and
random search of the same seed) and a figure of the per-seed distributions. Finished
runs are reused, so a sweep can be widened or resumed.
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

from benchmarks import mnist1d, nqm, ppo, rl, stiff, variants  # noqa: E402
from benchmarks.common import Benchmark, parse_seeds  # noqa: E402
from benchmarks.suite import run_all, write_report  # noqa: E402


def all_benchmarks(quick: bool) -> list[Benchmark]:
    return [
        *nqm.benchmarks(quick),
        *mnist1d.benchmarks(quick),
        *ppo.benchmarks(quick),
        *stiff.benchmarks(quick),
        *rl.benchmarks(quick),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the pipeline only")
    p.add_argument("--out", default=None, help="report directory (default bench-report[-quick])")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    p.add_argument("--procs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--report-only", action="store_true",
                   help="write the report from the finished runs in --out; run nothing")  # fmt: skip
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--no-report", action="store_true",
                   help="run only; write the report later with --report-only")  # fmt: skip
    p.add_argument("--seeds", default=None, help="seed sweep: e.g. 0-9 or 0,1,5")
    p.add_argument("--methods", nargs="+", metavar="M", help="run only these methods")
    p.add_argument("--variants", nargs="+", metavar="V", default=[],
                   help=f"FIRE PBT variants to add ({', '.join(variants.VARIANTS)}; a+b)")  # fmt: skip
    args = p.parse_args(argv)
    try:
        benches = select(all_benchmarks(args.quick), args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.list:
        for b in benches:
            print(f"{b.name:14s} {b.title}")
        return 0
    out = Path(args.out or ("bench-report-quick" if args.quick else "bench-report"))
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    t0 = time.perf_counter()
    wall = 0.0 if args.report_only else run_all(benches, out, args.procs)
    if args.no_report:
        print(f"ran {out} in {wall:.1f}s (no report)", flush=True)
        return 0
    write_report(benches, out, command.strip(), wall)
    print(f"wrote {out}/report.md in {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


def select(benches: list[Benchmark], args: argparse.Namespace) -> list[Benchmark]:
    """Apply --only, --seeds, --variants and --methods; ValueError names a bad one."""
    if args.only:
        unknown = set(args.only) - {b.name for b in benches}
        if unknown:
            names = ", ".join(b.name for b in benches)
            raise ValueError(f"unknown benchmark(s) {', '.join(sorted(unknown))} (known: {names})")
        benches = [b for b in benches if b.name in args.only]
    bad = [v for v in args.variants if not variants.known(v)]
    if bad:
        raise ValueError(
            f"unknown variant(s) {', '.join(bad)} (known: {', '.join(variants.VARIANTS)})"
        )
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    for b in benches:
        if seeds is not None:
            b.seeds = seeds
        fire = b.methods.get("fire")
        baselines = [m for m in b.methods if "@" not in m and not m.startswith("fire")]
        for v in args.variants:
            if fire is not None:
                algo = fire["algorithm"]
                extra, top = variants.split(variants.variant(v, algo["max_eval_steps"]))
                extra.update(variants.shape(v, algo))
                b.methods[f"fire@{v}"] = {**fire, **top, "algorithm": {**algo, **extra}}
            if variants.common(v):  # random search and PBT take it too
                extra, top = variants.split(variants.common_settings(v))
                for m in baselines:
                    cfg = b.methods[m]
                    b.methods[f"{m}@{v}"] = {
                        **cfg,
                        **top,
                        "algorithm": {**cfg["algorithm"], **extra},
                    }
    if args.methods:
        known = {m for b in benches for m in b.methods}
        unknown = set(args.methods) - known
        if unknown:
            raise ValueError(
                f"unknown method(s) {', '.join(sorted(unknown))} (known here: {', '.join(sorted(known))})"
            )
        for b in benches:
            b.methods = {m: c for m, c in b.methods.items() if m in args.methods}
    return benches


if __name__ == "__main__":
    sys.exit(main())
