"""Paired differences between methods of a seed sweep (issue 11): the same seed, two methods.

Per benchmark, for each method against ``--base``: both means and worst seeds over the
seeds both finished, the mean paired difference (method minus base) with its standard
error, and on how many seeds the method did better (by the run's ``direction``). The
score is the one the report's seed tables use: the replayed best schedule's test score
(``result.json``); on the RL benchmarks, the 24-seed replay of ``benchmarks.rl_replays``
(``replays.json``: ``greedy`` is the greedy policy's return, ``sampled`` the agent's own).

    PYTHONPATH=src python -m benchmarks.paired --out SWEEP --base fire@eval-half \\
        --methods fire@eval-half+strat --only nqm-noise nqm-exact --seeds 0-19

``--exclude 1,17`` leaves seeds out (to see a change away from the seeds it was made for).
``--metric virtual`` (or ``compute``) compares runs on the simulated executor by their
virtual wall-clock seconds (or virtual worker-seconds) from ``timing.json``, lower is
better (issue 12: when an asynchronous run ends).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

from benchmarks.common import parse_seeds, run_seed
from benchmarks.rl import benchmarks as rl_benchmarks

#: the RL benchmarks, whose runs are compared on their multi-seed replays
RL = frozenset(b.name for b in rl_benchmarks(quick=False))


#: --metric values read from timing.json (the simulated executor's clock), lower is better
TIMING = {"virtual": "virtual_seconds", "compute": "virtual_compute"}


def scores(out: Path, bench: str, method: str, metric: str) -> tuple[dict[int, float], str]:
    """seed -> score of ``method``'s finished runs of ``bench``, and the direction."""
    found: dict[int, float] = {}
    direction = "max"
    for run in (out / bench).glob(f"{method}-seed*"):
        result = run / "result.json"
        if not result.exists():
            continue
        r = json.loads(result.read_text())
        direction = r["direction"]
        seed = run_seed(run)
        if metric in TIMING:
            timing = json.loads((run / "timing.json").read_text())
            if TIMING[metric] not in timing:
                continue  # not a run on the simulated executor
            found[seed], direction = timing[TIMING[metric]], "min"
        elif bench in RL:
            replays = run / "replays.json"
            if not replays.exists():
                continue
            rep = json.loads(replays.read_text())
            found[seed] = rep["sampled_mean" if metric == "sampled" else "mean"]
        else:
            found[seed] = r["replay"]["test"]
    return found, direction


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="the sweep directory")
    p.add_argument("--base", required=True)
    p.add_argument("--methods", nargs="+", required=True)
    p.add_argument("--only", nargs="+", required=True, metavar="BENCH")
    p.add_argument("--seeds", default=None, help="e.g. 0-19 (default: every seed found)")
    p.add_argument("--exclude", default=None, help="seeds to leave out, e.g. 1,17")
    p.add_argument("--metric", choices=("greedy", "sampled", *TIMING), default="greedy",
                   help="RL benchmarks: which replay return; virtual / compute: the "
                        "simulated executor's seconds / worker-seconds")  # fmt: skip
    args = p.parse_args(argv)
    try:
        keep = set(parse_seeds(args.seeds)) if args.seeds is not None else None
        drop = set(parse_seeds(args.exclude)) if args.exclude is not None else set()
    except ValueError as e:
        print(f"paired: {e}", file=sys.stderr)
        return 2
    missing = [b for b in args.only if not (args.out / b).is_dir()]
    if missing:
        print(f"paired: no runs of {', '.join(missing)} under {args.out}", file=sys.stderr)
        return 2
    for bench in args.only:
        base, direction = scores(args.out, bench, args.base, args.metric)
        sign = -1.0 if direction == "min" else 1.0
        worst = max if direction == "min" else min
        print(
            f"{bench} ({'lower' if direction == 'min' else 'higher'} is better), base {args.base}"
        )
        for method in args.methods:
            other, _ = scores(args.out, bench, method, args.metric)
            seeds = sorted(
                s for s in set(base) & set(other) if (keep is None or s in keep) and s not in drop
            )
            if len(seeds) < 2:
                print(f"  {method}: {len(seeds)} seed(s) in common, nothing to compare")
                continue
            d = [other[s] - base[s] for s in seeds]
            se = statistics.stdev(d) / math.sqrt(len(d))
            wins = sum(sign * x > 0 for x in d)
            b = [base[s] for s in seeds]
            o = [other[s] for s in seeds]
            print(
                f"  {method}: {len(seeds)} seeds; base {statistics.mean(b):.4f} "
                f"(worst {worst(b):.4f}), this {statistics.mean(o):.4f} (worst {worst(o):.4f}); "
                f"paired {statistics.mean(d):+.4f} ± {se:.4f}; better on {wins}/{len(seeds)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
