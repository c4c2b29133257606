"""`firepbt run` at scale, measured as issue 12 first measured it (the command line, live view on).

``benchmarks/controller.py`` times the run loop and the decider inside one process, without
the live view. A user runs ``firepbt run``, which also shows every event to the live view
(plain lines when stdout is not a terminal, as here: stdout is a pipe). This script runs
the issue's command for FIRE PBT on the bundled NQM, configured as the controller
benchmark's sync rows (``dim = 50``: training costs microseconds; the defaults spelled
out: in-process executor, checkpoints on), in a fresh process per configuration and reports, per ready point: the wall
seconds of the run (``timing.json``, as the issue's table), and the CPU seconds of the
whole process (imports and start-up included, so it is an upper bound on the
controller's). ``--src`` measures another checkout's ``src`` (for a "before" row).

    PYTHONPATH=src python -m benchmarks.cli_scale --label "after, idle"
    PYTHONPATH=src python -m benchmarks.cli_scale --label before --src /tmp/old/src

Rows are appended to ``benchmarks/results/cli_scale.json`` under ``--label``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.controller import FIRE_SHAPES, overrides

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "cli_scale.json"


def measure(workers: int, steps: int, src: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "firepbt", "run", "nqm-fire", "--out", str(out)]
        # the controller benchmark's FIRE PBT row, spelled as --set options
        for s in overrides("fire", "sync", workers, steps, "inprocess"):
            cmd += ["--set", s]
        env = {**os.environ, "PYTHONPATH": str(src)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall_process = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"firepbt run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        timing = json.loads((out / "timing.json").read_text())
        ready_interval = int(json.loads((out / "run.json").read_text())["config"]["ready_interval"])
    points = steps // ready_interval
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "workers": workers,
        "steps": steps,
        "ready_points": points,
        "run_wall_s": timing["wall_seconds"],
        "run_wall_s_per_ready": timing["wall_seconds"] / points,
        "process_wall_s": wall_process,
        "process_cpu_s_per_ready": cpu / points,
        "peak_rss_mb": after.ru_maxrss / 1024,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| workers | ready pts | run wall s/ready | process CPU s/ready | process wall s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['ready_points']} | {r['run_wall_s_per_ready']:.3f} | "
            f"{r['process_cpu_s_per_ready']:.3f} | {r['process_wall_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[22, 1000], choices=sorted(FIRE_SHAPES))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--label", default="after")
    p.add_argument("--src", type=Path, default=HERE.parent / "src", help="the checkout's src")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--show", action="store_true", help="print the stored tables; run nothing")
    args = p.parse_args(argv)
    if args.steps < 100:
        p.error("--steps must be at least one ready interval (100)")
    data = json.loads(args.results.read_text()) if args.results.exists() else {}
    if args.show:
        for label, rows in data.items():
            print(f"\n{label}:\n{table(rows)}")
        return 0
    rows = []
    for w in args.sizes:
        rows.append(measure(w, args.steps, args.src.resolve()))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    old = [r for r in data.get(args.label, []) if r["workers"] not in args.sizes]
    data[args.label] = old + rows
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
