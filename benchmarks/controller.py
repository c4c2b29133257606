"""Controller benchmark (issue 12): what the run loop and the decider cost, per population.

FIRE PBT and PBT, sync and async, at 22, 100, 350 and 1000 workers on the bundled NQM
with ``dim = 50`` (a training call costs microseconds), so nearly all the time measured
is the controller's: the decider, the journal, the lineage and the checkpoints. Each
configuration runs in a fresh Python process (its peak RSS is the controller's, plus
1000 tiny NQM states). Printed per configuration:

* ``ctl s/ready``: controller CPU seconds per ready point: the process's CPU time minus
  the CPU time spent inside the executor (training) and in checkpoint writes, over ready
  points, plus the CPU time of GP fits done in a process pool (``algorithm.gp_workers``).
  CPU time, not wall time, so that the figure means something on a loaded machine;
* ``ready ms med/p99``: CPU milliseconds of ``decider.on_ready`` per ready event (sync:
  one event per ready point);
* ``GP fits/ready``: GP hyperparameter fits (marginal-likelihood optimisations) per
  ready point, and ``GP cond/ready``: posterior means computed with kept hyperparameters;
* ``bsd/ready``: best_score_diff evaluations (curve pairs) per ready point;
* ``ckpt s/round``: wall seconds per ready point the loop spent taking a checkpoint (sync
  rows; checkpoints on): before issue 12b every file was written and fsynced there; since,
  the loop only pickles (and waits for the previous write, if still going) and
  ``ckpt write s/round`` is the background thread's wall seconds writing the files,
  fsyncs included, while the run goes on;
* ``wall s/ready``: wall seconds of the whole run per ready point (training here costs
  microseconds; on a shared machine this is the least reliable column);
* ``RSS MB``: peak resident memory of the process; ``journal B/ws``: journal bytes per
  worker-step (steps trained, summed over workers).

Rows use the in-process executor (async: round-robin, as before issue 12), or the
simulated executor (virtual clock, heterogeneous speeds; its virtual wall-clock and
compute are recorded) with ``--executor simulated``. A configuration that exceeds
``--max-seconds`` (wall) is stopped there and its
figures are over the ready points it completed (marked ``*``).

    PYTHONPATH=src python benchmarks/controller.py --label after
    PYTHONPATH=src python benchmarks/controller.py --sizes 22 100 --algos fire --modes sync

Results are appended to ``benchmarks/results/controller.json`` under ``--label``; the
figure ``benchmarks/results/controller.png`` plots every label found there.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "controller.json"
FIGURE = HERE / "results" / "controller.png"

#: workers -> (sub-populations, sub-population size, evaluators): the issue's shapes at 22,
#: 350 and 1000; at 100, four sub-populations of 16 and 3/4 of the 48 parents.
FIRE_SHAPES = {22: (2, 8, 6), 100: (4, 16, 36), 350: (4, 50, 150), 1000: (4, 160, 360)}


class _Budget(Exception):
    pass


def _imports() -> dict[str, Any]:
    """The modules this benchmark patches, in the pre- or post-issue-8 layout."""
    try:
        from firepbt.core import curves
        from firepbt.runner.loop import Run
    except ImportError:  # the layout before issue 8
        from firepbt import curves  # type: ignore[no-redef]
        from firepbt.runner import Run  # type: ignore[no-redef,attr-defined]
    from firepbt import cli
    from firepbt.algorithms import fire
    from firepbt.config import load_config

    return {"curves": curves, "Run": Run, "cli": cli, "fire": fire, "load_config": load_config}


def overrides(algo: str, mode: str, workers: int, steps: int, executor: str) -> list[str]:
    sets = [
        "args.dim=50",
        f"steps={steps}",
        "replay=false",
        f"mode={mode!r}".replace("'", '"'),
        f'executor="{executor}"',
        f"checkpoints={'true' if mode == 'sync' else 'false'}",
    ]
    if algo == "fire":
        n, size, ev = FIRE_SHAPES[workers]
        sets += [
            f"algorithm.subpopulations={n}",
            f"algorithm.subpopulation_size={size}",
            f"algorithm.evaluators={ev}",
        ]
    else:
        sets.append(f"algorithm.population={workers}")
    return sets


def measure_one(
    algo: str,
    mode: str,
    workers: int,
    steps: int,
    max_seconds: float,
    async_executor: str = "inprocess",  # the executor of every row
    extra: list[str] | None = None,
) -> dict:
    """Run one configuration in this process and return its figures."""
    m = _imports()
    curves, fire = m["curves"], m["fire"]
    executor = async_executor
    name = "nqm-fire" if algo == "fire" else "nqm-pbt"
    config = m["load_config"](
        m["cli"].resolve_config_path(name),
        overrides(algo, mode, workers, steps, executor) + list(extra or []),
    )
    assert config.workers == workers, (config.workers, workers)

    counts = {"fits": 0, "bsd": 0}
    stats = getattr(curves, "STATS", None)  # the post-issue-12 counters, if any
    if stats is None:
        gp = curves._gp_posterior_mean

        def counted_gp(*a: Any, **k: Any) -> Any:
            counts["fits"] += 1
            return gp(*a, **k)

        curves._gp_posterior_mean = counted_gp
        bsd = fire.best_score_diff

        def counted_bsd(*a: Any, **k: Any) -> Any:
            counts["bsd"] += 1
            return bsd(*a, **k)

        fire.best_score_diff = counted_bsd
    else:
        for k in stats:
            stats[k] = 0

    # scikit-learn's GP module is imported on the first fit; import it before the clock
    # starts so that a one-off ~0.5 s import does not count as controller time
    import sklearn.gaussian_process  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        run = m["Run"](config, Path(tmp) / "run")
        ex = run.executor
        train = {"seconds": 0.0, "worker_steps": 0}
        wait = ex.wait

        def timed_wait(*, every: bool) -> Any:
            t = time.process_time()
            out = wait(every=every)
            train["seconds"] += time.process_time() - t
            train["worker_steps"] += sum(r.steps for r in out)
            return out

        ex.wait = timed_wait
        ckpt_cpu = [0.0]
        if run.store is not None:
            save = run.store.save

            def timed_save(*a: Any, **k: Any) -> Any:
                t = time.process_time()
                out = save(*a, **k)
                ckpt_cpu[0] += time.process_time() - t
                return out

            run.store.save = timed_save
        ready_ms: list[float] = []
        cls = type(run.decider)  # patched on the class: the decider itself is checkpointed
        on_ready = cls.on_ready
        t_start = time.perf_counter()
        stopped = {"early": False}

        def timed_ready(self: Any, ws: Any) -> Any:
            if time.perf_counter() - t_start > max_seconds:
                stopped["early"] = True
                raise _Budget
            t = time.process_time()
            out = on_ready(self, ws)
            ready_ms.append(1000 * (time.process_time() - t))
            return out

        cls.on_ready = timed_ready
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            run.execute()
        except _Budget:
            pass
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        ckpt = sum(t for t, _ in run.checkpoint_stats)
        writes = getattr(run.store, "writes", None)  # background writes (issue 12b)
        if writes:
            ckpt_cpu[0] += sum(c for _, c in writes)  # the writer thread's CPU time
        journal_bytes = (Path(tmp) / "run" / "events.jsonl").stat().st_size
        virtual = getattr(ex, "clock", None)
        virtual_compute = getattr(ex, "compute", None)
    if stats is not None:
        counts = {"fits": stats.get("fits", 0), "bsd": stats.get("pairs", 0)}
        cond = stats.get("conditioned", 0)
    else:
        cond = 0
    points = run.ready_points if mode == "sync" else max(run.ready_points, 1)
    if mode == "sync":
        points = len(ready_ms)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # GP fits done in a process pool (algorithm.gp_workers > 1) are controller work too
    pool_cpu = float(stats.get("parallel_cpu", 0.0)) if stats is not None else 0.0
    ctl = cpu - train["seconds"] - ckpt_cpu[0] + pool_cpu
    ready_sorted = sorted(ready_ms)
    return {
        "algo": algo,
        "mode": mode,
        "workers": workers,
        "executor": executor,
        "steps": steps,
        "stopped_early": stopped["early"],
        "wall_s": wall,
        "cpu_s": cpu,
        "train_cpu_s": train["seconds"],
        "ckpt_cpu_s": ckpt_cpu[0],
        "ready_points": points,
        "ready_events": len(ready_ms),
        "ctl_s_per_ready": ctl / max(points, 1),
        "pool_cpu_s": pool_cpu,
        "wall_s_per_ready": wall / max(points, 1),
        "ready_ms_median": statistics.median(ready_ms) if ready_ms else None,
        "ready_ms_p99": ready_sorted[int(0.99 * (len(ready_sorted) - 1))] if ready_ms else None,
        "fits_per_ready": counts["fits"] / max(points, 1),
        "cond_per_ready": cond / max(points, 1),
        "bsd_per_ready": counts["bsd"] / max(points, 1),
        "ckpt_s_per_round": ckpt / max(len(run.checkpoint_stats), 1)
        if run.checkpoint_stats
        else None,
        "ckpt_write_s_per_round": sum(t for t, _ in writes) / len(writes) if writes else None,
        "rss_mb": rss_mb,
        "journal_bytes_per_worker_step": journal_bytes / max(train["worker_steps"], 1),
        "virtual_seconds": virtual,
        "virtual_compute": virtual_compute,
        "extra": list(extra or []),
    }


def _fmt(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    head = (
        "| algo | mode | workers | ready pts | ctl s/ready | ready ms med | ready ms p99 | "
        "GP fits/ready | GP cond/ready | bsd/ready | ckpt s/round | ckpt write s/round | wall s/ready | RSS MB | journal B/ws | "
        "virtual s | virtual compute |"
    )
    lines = [head, "|" + "---|" * 3 + "---:|" * 14]
    for r in rows:
        star = "*" if r["stopped_early"] else ""
        lines.append(
            f"| {r['algo']} | {r['mode']} | {r['workers']} | {r['ready_points']}{star} | "
            f"{_fmt(r['ctl_s_per_ready'], '.3f')} | {_fmt(r['ready_ms_median'], '.1f')} | "
            f"{_fmt(r['ready_ms_p99'], '.1f')} | {_fmt(r['fits_per_ready'], '.0f')} | "
            f"{_fmt(r['cond_per_ready'], '.0f')} | {_fmt(r['bsd_per_ready'], '.0f')} | "
            f"{_fmt(r['ckpt_s_per_round'], '.3f')} | "
            f"{_fmt(r.get('ckpt_write_s_per_round'), '.3f')} | "
            f"{_fmt(r.get('wall_s_per_ready'), '.3f')} | {_fmt(r['rss_mb'], '.0f')} | "
            f"{_fmt(r['journal_bytes_per_worker_step'], '.1f')} | "
            f"{_fmt(r.get('virtual_seconds'), '.0f')} | {_fmt(r.get('virtual_compute'), '.0f')} |"
        )
    return "\n".join(lines)


def figure(path: Path = FIGURE, results: Path = RESULTS) -> Path:
    """Log-log: controller cost against workers, one line per (label, algo, mode)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(results.read_text())
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    styles = {"before": "--", "after": "-"}
    colours = {"fire": "C0", "pbt": "C1"}
    panels = (
        ("sync", axes[0], "ctl_s_per_ready"),
        ("async", axes[1], "ctl_s_per_ready"),
        ("async", axes[2], "ready_ms_median"),
    )
    # "before" (dashed) and the latest label measured with the default settings (solid);
    # the intermediate labels are in RESULTS.md's tables and controller.json
    plain = [
        label
        for label in data
        if label != "before" and not any(k in label for k in ("simulated", "gp_", "="))
    ]
    shown = [label for label in ("before", plain[-1] if plain else None) if label in data]
    for label in shown:
        rows = data[label]
        for algo in ("fire", "pbt"):
            for mode, ax, key in panels:
                pts = sorted(
                    (r["workers"], r[key])
                    for r in rows
                    if r["algo"] == algo and r["mode"] == mode and r[key]
                )
                if pts:
                    x, y = zip(*pts, strict=True)
                    ax.plot(
                        x,
                        y,
                        styles.get(label, "-"),
                        color=colours[algo],
                        marker="s" if label == "before" else "o",
                        ms=4,
                        label=f"{algo} {label}",
                    )
    latest = data[shown[-1]] if shown else []
    at22 = [
        r["ctl_s_per_ready"]
        for r in latest
        if (r["algo"], r["mode"], r["workers"]) == ("fire", "sync", 22)
    ]
    if at22:
        axes[0].plot([1000], [15 * at22[0]], "x", color="red", ms=7,
                     label="ratio target: 15 × fire's cost at 22")  # fmt: skip
    xs = sorted(FIRE_SHAPES)
    for ax in axes[:2]:
        ax.plot(xs, [0.02 * w / 22 for w in xs], color="grey", lw=0.8, label="∝ workers")
    axes[0].axhline(0.5, color="red", lw=0.8, ls=":", label="target at 1000 (0.5 s)")
    axes[2].axhline(20, color="red", lw=0.8, ls=":", label="target at 1000 (20 ms)")
    axes[0].set_title("sync: controller CPU s per ready point", fontsize=10)
    axes[1].set_title("async: controller CPU s per population ready point", fontsize=10)
    axes[2].set_title("async: decider CPU ms per ready event (median)", fontsize=10)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("workers")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=sorted(FIRE_SHAPES))
    p.add_argument("--algos", nargs="+", default=["fire", "pbt"])
    p.add_argument("--modes", nargs="+", default=["sync", "async"])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--max-seconds", type=float, default=240.0)
    p.add_argument("--label", default="after")
    p.add_argument(
        "--executor",
        dest="async_executor",
        choices=["inprocess", "simulated"],
        default="inprocess",
        help="executor of every row (simulated: virtual time, heterogeneous speeds)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra config override for every row, e.g. algorithm.gp_refit=0.5",
    )
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--figure", type=Path, default=FIGURE)
    p.add_argument("--one", nargs=3, metavar=("ALGO", "MODE", "WORKERS"), help=argparse.SUPPRESS)
    p.add_argument("--show", action="store_true", help="print the tables and figure; run nothing")
    args = p.parse_args(argv)
    if args.show:
        for label, rows in json.loads(args.results.read_text()).items():
            print(f"\n{label}:\n{table(rows)}")
        print(f"figure: {figure(args.figure, args.results)}")
        return 0
    if args.one:
        algo, mode, w = args.one
        row = measure_one(
            algo, mode, int(w), args.steps, args.max_seconds, args.async_executor, args.set
        )
        print(json.dumps(row))
        return 0
    rows = []
    for mode in args.modes:
        for algo in args.algos:
            for w in args.sizes:
                cmd = [sys.executable, __file__, "--one", algo, mode, str(w)]
                cmd += ["--steps", str(args.steps), "--max-seconds", str(args.max_seconds)]
                cmd += ["--executor", args.async_executor]
                for item in args.set:
                    if algo == "fire" or not item.startswith("algorithm.gp_refit"):
                        cmd += ["--set", item]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
    print(table(rows))
    data = json.loads(args.results.read_text()) if args.results.exists() else {}
    old = [
        r
        for r in data.get(args.label, [])
        if (r["algo"], r["mode"], r["workers"])
        not in {(x["algo"], x["mode"], x["workers"]) for x in rows}
    ]
    data[args.label] = old + rows
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(data, indent=1) + "\n")
    print(f"figure: {figure(args.figure, args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
