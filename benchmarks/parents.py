"""What FIRE PBT's parent sub-populations did in a seed sweep, from the journals (issue 11).

``python -m benchmarks.parents --out SWEEP --only stiff --methods fire@strat+final
[--seeds 0-119]`` prints, per benchmark and method, over the seeds that finished:

- the sub-populations' median learning rate at the end (median over seeds), and on how
  many seeds P_2's median ends below a tenth of P_1's;
- the gap in final Q between P_1's best member and P_2's (median over seeds);
- the share of P_2's members whose first task diverged, the largest initial rate that
  did not and the smallest that did (medians over seeds), and P_2's median rate in the
  task that starts at the first ready point (``ready_interval``);
- exploit copies from one sub-population into another per run (``greedy_sources``);
- in P_2's own exploit copies (between members with different rates, the loser not
  diverged: a fitness ranking), how often the source had the lower rate of the two.

The ninth pass's diagnosis of the stiff task (``benchmarks/RESULTS.md``) is this
script's output. The hyperparameter read is ``--hparam`` (default ``lr``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import parse_seeds
from firepbt.runner.journal import read_events


def summarise(run_dir: Path, hparam: str) -> dict[str, Any]:
    """One run's numbers (see the module docstring)."""
    roles: list[tuple[str, int]] = []
    last_h: dict[int, float] = {}
    last_q: dict[int, float] = {}
    first: dict[int, tuple[float, bool]] = {}
    second_h: dict[int, float] = {}
    result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    ready = int(result["config"]["ready_interval"])  # the first ready point
    cross = 0
    lower = []  # P_2's exploit copies: whether the source's rate was below the loser's
    finite: dict[int, bool] = {}  # whether each worker's latest score was finite
    for ev in read_events(run_dir):
        kind = ev["ev"]
        if kind == "start":
            roles = [(r, int(sp)) for r, sp in ev["roles"]]
        elif kind == "result":
            w = int(ev["worker"])
            h = float(ev["hparams"][hparam])
            last_h[w] = h
            finite[w] = ev["score"] is not None
            if ev["score"] is not None:
                last_q[w] = float(ev["score"])
            role, sp = roles[w]
            if role != "member" or sp != 2:
                continue
            if w not in first:
                first[w] = (h, ev["score"] is None)
            if int(ev["start"]) == ready and w not in second_h:
                second_h[w] = h
        elif kind == "copy" and ev.get("reason") == "exploit":
            src, dst = int(ev["src"]), int(ev["dst"])
            if roles[src][1] != roles[dst][1]:
                cross += 1
            elif roles[src][1] == 2 and src in last_h and dst in last_h and finite[dst]:
                if last_h[src] != last_h[dst]:  # a diverged loser is not a fitness ranking
                    lower.append(last_h[src] < last_h[dst])

    def members(sp: int) -> list[int]:
        return [w for w, (r, s) in enumerate(roles) if r == "member" and s == sp]

    p1, p2 = members(1), members(2)
    out: dict[str, Any] = {
        "p1_rate": statistics.median(last_h[w] for w in p1 if w in last_h),
        "p2_rate": statistics.median(last_h[w] for w in p2 if w in last_h),
        "gap": max(last_q[w] for w in p1 if w in last_q)
        - max(last_q[w] for w in p2 if w in last_q),
        "diverged_first": sum(bad for _, bad in first.values()) / len(first),
        "cross": cross,
        "lower": lower,
        "rate_after_first_ready": statistics.median(second_h.values()) if second_h else None,
    }
    ok = [h for h, bad in first.values() if not bad]
    bad = [h for h, b in first.values() if b]
    out["largest_stable"] = max(ok) if ok and bad else None
    out["smallest_diverged"] = min(bad) if ok and bad else None
    return out


def _median(rows: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="the sweep directory")
    p.add_argument("--only", nargs="+", required=True, metavar="BENCH")
    p.add_argument("--methods", nargs="+", required=True, metavar="M")
    p.add_argument("--seeds", help="e.g. 0-119 (default: every seed found)")
    p.add_argument("--hparam", default="lr")
    args = p.parse_args(argv)
    try:
        wanted = parse_seeds(args.seeds) if args.seeds else None
    except ValueError as exc:
        print(f"parents: --seeds: {exc}", file=sys.stderr)
        return 2
    for bench in args.only:
        for method in args.methods:
            dirs = sorted((args.out / bench).glob(f"{method}-seed*"))
            runs = [
                d
                for d in dirs
                if (d / "result.json").exists()
                and (wanted is None or int(d.name.rsplit("seed", 1)[1]) in wanted)
            ]
            if not runs:
                print(f"parents: no finished run of {method} under {args.out / bench}",
                      file=sys.stderr)  # fmt: skip
                return 2
            rows = [summarise(d, args.hparam) for d in runs]
            low = sum(r["p2_rate"] < r["p1_rate"] / 10 for r in rows)
            print(f"{bench} {method} ({len(rows)} seeds)")
            print(
                f"  final median {args.hparam}: P_1 {_median(rows, 'p1_rate'):.3g}, "
                f"P_2 {_median(rows, 'p2_rate'):.3g}; P_2 below a tenth of P_1 on "
                f"{low}/{len(rows)} seeds"
            )
            print(f"  P_1's best final Q - P_2's: {_median(rows, 'gap'):.3g}")
            print(
                f"  P_2's first tasks diverged: "
                f"{100 * statistics.mean(r['diverged_first'] for r in rows):.0f}%; largest "
                f"stable / smallest diverged initial {args.hparam}: "
                f"{_median(rows, 'largest_stable'):.3g} / "
                f"{_median(rows, 'smallest_diverged'):.3g}; P_2's median {args.hparam} "
                f"after the first ready point: {_median(rows, 'rate_after_first_ready'):.3g}"
            )
            print(
                f"  cross-population exploit copies per run: "
                f"{statistics.mean(r['cross'] for r in rows):.1f}"
            )
            lower = [x for r in rows for x in r["lower"]]
            if lower:
                print(
                    f"  P_2's exploit copies: the source's {args.hparam} below the loser's "
                    f"in {sum(lower)}/{len(lower)} ({100 * sum(lower) / len(lower):.0f}%)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
