"""Where does FIRE PBT's best NQM schedule lose against the tuned ones? (issue 11, item 2)

For every FIRE PBT run of a sweep on the NQM benchmarks this reads the best network's
schedule and its lineage from the run's journal and splits the schedule at the network's
last evaluator success (the step at which its weights last moved from a parent
sub-population: the evaluator assignment that took them, after which an evaluator and
then P_1 trained them at P_1's rates): before it the network trained in the parent
sub-populations (their rates), after it at P_1's greedy rates (a network that never left
P_1 is left as found). It then computes the exact NQM loss
(:func:`firepbt.tasks.nqm.schedules.final_loss`, the replay's test value) of

- the schedule as found (equal to the run's replay test: a check),
- the schedule with every rate before that step multiplied by 1.2, 1.4 and 2 (clipped to
  the search space's upper bound, 1): is the parents' phase too cautious?
- the schedule with every rate after that step replaced by one constant (the best of a
  grid): is P_1's greedy ending the loss?

and, from every exploit inside the parent sub-populations, the log-ratio of the
source's learning rate to the loser's (positive: selection pushes the parents' rates up),
in the first and second half of training.

    PYTHONPATH=src python -m benchmarks.nqm_diagnose --out SWEEP --method fire@eval-half --seeds 0-9

The runs come from ``python -m benchmarks --out SWEEP --only nqm-noise nqm-exact
--seeds 0-9 --variants eval-half --methods fire@eval-half``. Results:
``benchmarks/results/nqm_diagnose.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import parse_seeds, run_seed

HERE = Path(__file__).resolve().parent
SCALES = (1.2, 1.4, 2.0)
ENDINGS = (0.01, 0.02, 0.03, 0.05, 0.1)


def _lineage_transfer(events: list[dict[str, Any]], member: int, step: int) -> int | None:
    """The step at which the weights of ``member``'s network at ``step`` last left a parent
    sub-population: the evaluator assignment (a copy from a parent member to an
    evaluator, which then trains them at the child's rates) in its lineage. None: the
    network never came from a parent sub-population."""
    from firepbt.runner.lineage import Lineage

    (net,) = {
        e["net"]
        for e in events
        if e["ev"] == "result" and (e["worker"], e["step"]) == (member, step)
    }
    made_by = {e["net"]: e for e in events if e["ev"] == "copy"}  # the copy that made each net
    for n in Lineage.from_events(events).ancestry(net):
        if n in made_by and made_by[n]["reason"] == "assign":
            return int(made_by[n]["step"])
    return None


def _parent_exploits(events: list[dict[str, Any]], steps: int) -> tuple[list[float], list[float]]:
    """log(lr of the source / lr of the loser) of every exploit in a parent sub-population,
    in the first and in the second half of training."""
    roles: list[int] = []
    lr: dict[int, float] = {}
    early: list[float] = []
    late: list[float] = []
    for e in events:
        if e["ev"] == "start":
            roles = [r[1] if r[0] == "member" else 0 for r in e["roles"]]
        elif e["ev"] == "copy" and e["reason"] == "exploit" and roles[e["dst"]] >= 2:
            r = math.log(lr[e["src"]] / lr[e["dst"]])
            (early if e["step"] < steps / 2 else late).append(r)
        elif e["ev"] == "hparams":
            lr[e["worker"]] = float(e["hparams"]["lr"])
    return early, late


def diagnose(run: Path) -> dict[str, Any]:
    from firepbt.runner.journal import read_events
    from firepbt.tasks.nqm.schedules import final_loss

    result = json.loads((run / "result.json").read_text(encoding="utf-8"))
    cfg = result["config"]
    dim, batch = cfg["args"]["dim"], cfg["args"]["batch_size"]
    high = float(cfg["space"]["lr"]["high"])
    best = result["best"]
    events = list(read_events(run))
    t = _lineage_transfer(events, best["member"], best["step"])
    segs = [
        (s["end"] - s["start"], float(s["hparams"]["lr"]), s["start"]) for s in best["schedule"]
    ]

    def loss(pieces: list[tuple[int, float, int]]) -> float:
        return final_loss([(n, lr) for n, lr, _ in pieces], dim=dim, batch_size=batch)

    half = int(result["steps"]) // 2

    def scaled(pieces: list[tuple[int, float, int]], f: float, part: str) -> float:
        """Loss with the rates of ``pieces`` (the parents' phase) times ``f`` (clipped):
        all of them, or only those in the first / second half of training."""
        out = []
        for n, lr, s in pieces:
            cut = [(n, s)] if not s < half < s + n else [(half - s, s), (s + n - half, half)]
            for m, start in cut:
                hit = part == "all" or (part == "first") == (start < half)
                out.append((m, min(high, lr * f) if hit else lr, start))
        return loss(out + after)

    if t is None:  # nothing to split: the network trained in P_1 all along
        before, after = [], segs
    else:
        before = [p for p in segs if p[2] < t]
        after = [p for p in segs if p[2] >= t]
    out: dict[str, Any] = {
        "replay_test": result["replay"]["test"],
        "as_found": loss(segs),
        "transfer_step": t,
        "scaled": {str(f): scaled(before, f, "all") for f in SCALES},
        "scaled_first_half": {str(f): scaled(before, f, "first") for f in SCALES},
        "scaled_second_half": {str(f): scaled(before, f, "second") for f in SCALES},
        # the same phase before the transfer, then one constant rate (the best of a grid)
        "ending": min(loss(before + [(n, e, s) for n, _, s in after]) for e in ENDINGS)
        if before and after
        else None,
    }
    early, late = _parent_exploits(events, int(result["steps"]))
    out["parent_exploits"] = {"early": early, "late": late}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="the sweep directory")
    p.add_argument("--method", default="fire@eval-half")
    p.add_argument("--only", nargs="+", default=["nqm-noise", "nqm-exact"])
    p.add_argument("--results", type=Path, default=HERE / "results" / "nqm_diagnose.json")
    p.add_argument("--seeds", default=None, help="only these runs, e.g. 0-9 (default: all)")
    args = p.parse_args(argv)
    try:
        keep = set(parse_seeds(args.seeds)) if args.seeds is not None else None
    except ValueError as e:
        print(f"nqm_diagnose: {e}", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"method": args.method, "benchmarks": {}}
    for bench in args.only:
        runs = sorted((args.out / bench).glob(f"{args.method}-seed*"), key=run_seed)
        runs = [
            r
            for r in runs
            if (r / "result.json").exists() and (keep is None or run_seed(r) in keep)
        ]
        if not runs:
            print(
                f"--out: no finished {args.method} runs of {bench} in {args.out}", file=sys.stderr
            )
            return 2
        rows = {r.name: diagnose(r) for r in runs}
        mean = statistics.fmean
        summary = {
            "runs": len(rows),
            "as_found": mean(v["as_found"] for v in rows.values()),
            **{
                f"scaled {f}{label}": mean(v[key][str(f)] for v in rows.values())
                for key, label in (
                    ("scaled", ""),
                    ("scaled_first_half", ", first half only"),
                    ("scaled_second_half", ", second half only"),
                )  # fmt: skip
                for f in SCALES
            },
            "best ending": mean(
                v["ending"] if v["ending"] is not None else v["as_found"] for v in rows.values()
            ),
            "runs whose best network came from a parent": sum(
                v["transfer_step"] is not None for v in rows.values()
            ),
            "transfer step (median of those)": statistics.median(
                [v["transfer_step"] for v in rows.values() if v["transfer_step"] is not None] or [0]
            ),
        }
        for half in ("early", "late"):
            ratios = [r for v in rows.values() for r in v["parent_exploits"][half]]
            summary[f"parent exploits {half}"] = len(ratios) / len(rows)
            summary[f"log lr ratio {half}"] = mean(ratios) if ratios else float("nan")
            summary[f"share upward {half}"] = (
                sum(r > 0 for r in ratios) / len(ratios) if ratios else float("nan")
            )
        report["benchmarks"][bench] = {"summary": summary, "runs": rows}
        print(f"{bench} ({args.method}, {len(rows)} runs):")
        for k, v in summary.items():
            print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
