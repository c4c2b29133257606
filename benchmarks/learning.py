"""Does FIRE PBT *learn faster*? The current best effort of each method over training,
read from a seed sweep's journals (issue 11, item 3: the paper's RL claim, Figure 5).

The paper's Figure 5 plots the best return of any worker against environment steps.
On a noisy Q (an agent's training return) that is the highest of many noisy readings:
a method with more, or more diverse, workers reads higher by chance (random search tops
the plain Figure 5 of ``rl-lqr50``). This script measures instead the **held-out best
effort**: at each evaluation round k (every member of a synchronous run reports once per
round, so round k is the same compute for every method), take the member the method
itself would pick now, the one with the highest Q among P_1's members (FIRE PBT; the
paper's "current best effort") or among all members (PBT, random search), and record
that member's *next* reading, at round k + 1. The next reading's noise is independent
of the pick, so its mean over seeds is the picked network's expected Q without the
winner's curse. A non-finite next reading counts as the run's lowest finite Q.

Printed per benchmark, for each method against ``--base`` (paired on the seeds both
finished): the mean held-out best effort over the first, middle and last third of the
rounds and over all of them, the paired difference with its standard error and on how
many seeds the method was ahead. "Learns faster" would show as a lead in the first two
thirds. The figure (``--figure``) plots the mean curves and each method's paired
difference from the base with a band of two standard errors.

    PYTHONPATH=src python -m benchmarks.learning --out SWEEP --only rl-lqr50 \\
        --base pbt --methods fire@strat+final random --figure lqr50-learning.png
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
from firepbt.runner.journal import read_events

THIRDS = ("first third", "middle third", "last third", "all rounds")


def held_out_curve(run_dir: Path) -> list[float]:
    """The held-out best effort at every round but the last (module docstring), in the
    direction "higher is better" (a ``min`` run's scores are negated)."""
    config = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["config"]
    direction = config.get("direction", "max")
    sign = -1.0 if direction == "min" else 1.0
    roles: list[tuple[str, int]] = []
    readings: dict[int, list[float | None]] = {}
    for ev in read_events(run_dir):
        if ev["ev"] == "start":
            roles = [(r, int(sp)) for r, sp in ev["roles"]]
        elif ev["ev"] == "result" and roles[int(ev["worker"])] == ("member", 1):
            s = ev["score"]
            readings.setdefault(int(ev["worker"]), []).append(
                None if s is None or not math.isfinite(float(s)) else sign * float(s)
            )
    if not readings:
        raise ValueError(f"{run_dir}: no result of a P_1 member in the journal")
    rounds = {len(r) for r in readings.values()}
    if len(rounds) != 1:
        raise ValueError(
            f"{run_dir}: P_1's members reported {sorted(rounds)} times: not a synchronous run"
        )
    n = rounds.pop()
    floor = min(v for r in readings.values() for v in r if v is not None)
    curve = []
    for k in range(n - 1):
        now = {w: r[k] for w, r in readings.items() if r[k] is not None}
        if not now:
            curve.append(floor)
            continue
        pick = min(now, key=lambda w: (-now[w], w))  # the highest Q; ties: lowest id
        nxt = readings[pick][k + 1]
        curve.append(floor if nxt is None else nxt)
    return curve


def thirds(curve: list[float]) -> list[float]:
    """Mean over the first, middle and last third of the rounds, and over all."""
    n = len(curve)
    cuts = [0, n // 3, 2 * n // 3, n]
    return [statistics.fmean(curve[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)] + [
        statistics.fmean(curve)
    ]


def _sem(xs: list[float]) -> float:
    return statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else math.nan


def load(out: Path, bench: str, method: str, wanted: set[int] | None) -> dict[int, list[float]]:
    """seed -> held-out curve of ``method``'s finished runs of ``bench``."""
    found = {}
    for run in sorted((out / bench).glob(f"{method}-seed*")):
        seed = run_seed(run)
        if (run / "result.json").exists() and (wanted is None or seed in wanted):
            found[seed] = held_out_curve(run)
    return found


def compare(curves: dict[str, dict[int, list[float]]], base: str) -> list[dict[str, Any]]:
    """Per method: the means by third and the paired differences from ``base``."""
    rows = []
    for m, runs in curves.items():
        seeds = sorted(set(runs) & set(curves[base]))
        row: dict[str, Any] = {"method": m, "seeds": len(seeds), "thirds": [], "diffs": []}
        if not seeds:
            rows.append(row)
            continue
        mine = [thirds(runs[s]) for s in seeds]
        theirs = [thirds(curves[base][s]) for s in seeds]
        for j in range(len(THIRDS)):
            row["thirds"].append(statistics.fmean(t[j] for t in mine))
            d = [a[j] - b[j] for a, b in zip(mine, theirs, strict=True)]
            row["diffs"].append((statistics.fmean(d), _sem(d), sum(x > 0 for x in d)))
        rows.append(row)
    return rows


def figure(
    curves: dict[str, dict[int, list[float]]],
    base: str,
    title: str,
    path: Path,
    x_per_round: float,
    block: int = 10,
) -> Path:
    """Top: each method's mean held-out curve over seeds. Bottom: each method's paired
    difference from ``base``, averaged over blocks of ``block`` rounds per seed, mean
    over seeds with a band of two standard errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from benchmarks.suite import label

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
    for m, runs in curves.items():
        if not runs:
            continue
        n = min(len(c) for c in runs.values())
        ys = np.array([c[:n] for c in runs.values()])
        x = (np.arange(n) + 1) * x_per_round
        (line,) = top.plot(x, ys.mean(0), lw=1.3, label=f"{label(m)} (n={len(runs)})")
        if m == base:
            continue
        seeds = sorted(set(runs) & set(curves[base]))
        if len(seeds) < 2:
            continue
        n2 = min(n, *(len(curves[base][s]) for s in seeds))
        n2 -= n2 % block  # whole blocks of rounds
        d = np.array([np.array(runs[s][:n2]) - np.array(curves[base][s][:n2]) for s in seeds])
        d = d.reshape(len(seeds), n2 // block, block).mean(2)  # each seed's block means
        mean, se = d.mean(0), d.std(0, ddof=1) / math.sqrt(len(seeds))
        xx = x[:n2].reshape(-1, block).mean(1)
        bottom.plot(xx, mean, lw=1.2, color=line.get_color(), label=f"{label(m)} − {label(base)}")
        bottom.fill_between(xx, mean - 2 * se, mean + 2 * se, color=line.get_color(), alpha=0.2)
    bottom.axhline(0.0, color="grey", lw=0.8)
    top.set_ylabel("held-out best effort (mean over seeds)")
    bottom.set_ylabel(
        f"paired difference from {label(base)}\n(means over {block} rounds; band: ± 2 s.e.)"
    )
    bottom.set_xlabel("training steps per member (round k: the pick at k, its reading at k + 1)")
    top.set_title(title, fontsize=9)
    top.legend(fontsize=8)
    bottom.legend(fontsize=8)
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="the sweep directory")
    p.add_argument("--only", nargs="+", required=True, metavar="BENCH")
    p.add_argument("--base", required=True)
    p.add_argument("--methods", nargs="+", required=True, metavar="M")
    p.add_argument("--seeds", help="e.g. 0-59 (default: every seed found)")
    p.add_argument("--figure", type=Path, help="PNG path (one benchmark) or a directory")
    args = p.parse_args(argv)
    try:
        wanted = set(parse_seeds(args.seeds)) if args.seeds else None
    except ValueError as exc:
        print(f"learning: --seeds: {exc}", file=sys.stderr)
        return 2
    for bench in args.only:
        curves: dict[str, dict[int, list[float]]] = {}
        for m in [args.base, *[m for m in args.methods if m != args.base]]:
            try:
                curves[m] = load(args.out, bench, m, wanted)
            except ValueError as exc:
                print(f"learning: {exc}", file=sys.stderr)
                return 2
            if not curves[m]:
                print(f"learning: no finished run of {m} under {args.out / bench}",
                      file=sys.stderr)  # fmt: skip
                return 2
        print(f"{bench}: held-out best effort (higher is better), paired against {args.base}")
        print("| method | seeds | " + " | ".join(THIRDS) + " |")
        print("|---|---:|" + "---:|" * len(THIRDS))
        for row in compare(curves, args.base):
            cells = []
            for mean, (d, se, ahead) in zip(row["thirds"], row["diffs"], strict=True):
                cell = f"{mean:.3f}"
                if row["method"] != args.base:
                    cell += f" ({d:+.3f} ± {se:.3f}, {ahead}/{row['seeds']})"
                cells.append(cell)
            print(f"| {row['method']} | {row['seeds']} | " + " | ".join(cells) + " |")
        if args.figure is not None:
            first = next(iter(sorted((args.out / bench).glob(f"{args.base}-seed*"))))
            cfg = json.loads((first / "run.json").read_text(encoding="utf-8"))
            path = args.figure
            if path.suffix != ".png":
                path = path / f"{bench}-learning.png"
            title = (f"{bench}: the held-out best effort (the pick at round k, "
                     f"its next reading)")  # fmt: skip
            print(
                f"figure: {figure(curves, args.base, title, path, cfg['config']['eval_interval'])}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
