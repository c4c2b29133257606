"""Run the benchmarks (seeds over worker processes) and write the report from the journals.

Every number in ``report.md`` / ``report.json`` is read back from the runs' files, not
from memory: the best score and the test score at that point from ``events.jsonl``
(:func:`firepbt.report.plots.best_result`), the replay from ``result.json``. A finished run
(its ``result.json`` exists) is not run again, so an interrupted suite resumes.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Benchmark

METHOD_LABEL = {"random": "random search", "pbt": "PBT", "fire": "FIRE PBT"}

# Start order: the NQM evidence first (cheap, three seeds), then the long MNIST-1D runs
# (FIRE PBT first: it is the slowest), then the rest; references last.
_PRIORITY = ["nqm-noise", "nqm-exact", "mnist1d", "nqm36-noise", "ppo-cartpole"]
_METHOD_ORDER = {"fire": 0, "pbt": 1, "random": 2}


def _order(job: dict[str, Any]) -> tuple[int, int, int, int]:
    bench = _PRIORITY.index(job["bench"]) if job["bench"] in _PRIORITY else len(_PRIORITY)
    if job["kind"] == "references":
        return (1, bench, 0, 0)
    return (0, bench, job.get("seed", 0), _METHOD_ORDER.get(job.get("method", ""), 3))


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one experiment (or compute references) in this process; returns timing."""
    t0 = time.perf_counter()
    path = Path(job["path"])
    if job["kind"] == "references":
        if not path.exists():
            refs = job["fn"]()
            path.write_text(json.dumps(refs, indent=1) + "\n", encoding="utf-8")
    elif not (path / "result.json").exists():
        from firepbt.api import run
        from firepbt.config import Config

        if path.exists():  # an interrupted run: start it again
            for f in path.iterdir():
                if f.is_file():
                    f.unlink()
        config = Config.from_dict({**job["config"], "seed": job["seed"]})
        run(config, path)
    return {**{k: job[k] for k in ("kind", "bench", "path")}, "seconds": time.perf_counter() - t0}


def jobs_for(benches: Sequence[Benchmark], out: Path) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    seen_refs: set[str] = set()
    for b in benches:
        if b.references is not None and b.reference_key not in seen_refs:
            seen_refs.add(b.reference_key)
            jobs.append({"kind": "references", "bench": b.name, "fn": b.references,
                         "path": str(out / f"references-{b.reference_key}.json")})  # fmt: skip
        for method, config in b.methods.items():
            for seed in b.seeds:
                jobs.append({"kind": "run", "bench": b.name, "method": method, "seed": seed,
                             "config": config,
                             "path": str(out / b.name / f"{method}-seed{seed}")})  # fmt: skip
    return sorted(jobs, key=_order)


def run_all(benches: Sequence[Benchmark], out: Path, procs: int) -> float:
    out.mkdir(parents=True, exist_ok=True)
    jobs = jobs_for(benches, out)
    t0 = time.perf_counter()
    print(f"{len(jobs)} jobs on {procs} processes -> {out}", flush=True)
    if procs <= 1:
        done = map(run_job, jobs)
        for i, r in enumerate(done, 1):
            _log(i, len(jobs), r, t0)
    else:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(procs, maxtasksperchild=1) as pool:
            for i, r in enumerate(pool.imap_unordered(run_job, jobs), 1):
                _log(i, len(jobs), r, t0)
    return time.perf_counter() - t0


def _log(i: int, n: int, r: dict[str, Any], t0: float) -> None:
    name = Path(r["path"]).name
    print(f"[{time.perf_counter() - t0:7.1f}s] {i}/{n} {r['bench']}/{name} "
          f"({r['seconds']:.1f}s)", flush=True)  # fmt: skip


# --------------------------------------------------------------------------- reading back


def run_numbers(run_dir: Path) -> dict[str, Any]:
    """The numbers of one run, read from its journal (and the replay from result.json)."""
    from firepbt.report.plots import best_result
    from firepbt.runner.journal import read_events

    events = list(read_events(run_dir))
    best = best_result(events) or {}
    result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    replay = result.get("replay") or {}
    copies = [e for e in events if e["ev"] == "copy"]
    checks = [e for e in events if e["ev"] == "check"]
    outcomes: dict[str, int] = {}
    for e in checks:
        outcomes[e["outcome"]] = outcomes.get(e["outcome"], 0) + 1
    frees: dict[str, int] = {}
    for e in events:
        if e["ev"] == "free":
            frees[e["reason"]] = frees.get(e["reason"], 0) + 1
    success_steps = sorted(e["step"] for e in copies if e["reason"] == "success")
    return {
        "best": best.get("score"),
        "test": best.get("test"),
        "step": best.get("step"),
        "replay": replay.get("score"),
        "replay_test": replay.get("test"),
        "exploits": sum(1 for e in copies if e["reason"] == "exploit"),
        "successes": sum(1 for e in copies if e["reason"] == "success"),
        "assigns": sum(1 for e in events if e["ev"] == "assign"),
        "checks": len(checks),
        "check_outcomes": outcomes,
        "free_reasons": frees,
        "no_overlap_checks": sum(1 for e in checks if e["p"] is None),
        "success_p_median": _median([e["p"] for e in checks if e["outcome"] == "success"]),
        "success_diff_median": _median([e["diff"] for e in checks if e["outcome"] == "success"]),
        "success_steps": success_steps,
        "wall_seconds": json.loads((run_dir / "timing.json").read_text())["wall_seconds"],
    }


def _median(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


def mean_std(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof = 1; 0 for one value) of finite values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return {"mean": statistics.fmean(xs), "std": std, "n": len(xs)}


COLUMNS = ("best", "test", "replay", "replay_test")


def collect(benches: Sequence[Benchmark], out: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for b in benches:
        methods = {}
        for method in b.methods:
            runs = {
                str(s): run_numbers(out / b.name / f"{method}-seed{s}")
                for s in b.seeds
                if (out / b.name / f"{method}-seed{s}" / "result.json").exists()
            }
            agg = {c: mean_std([r[c] for r in runs.values()]) for c in COLUMNS}
            methods[method] = {"runs": runs, **agg}
        refs = {}
        path = out / f"references-{b.reference_key}.json"
        if b.references is not None and path.exists():
            refs = json.loads(path.read_text(encoding="utf-8"))
        report[b.name] = {"title": b.title, "methods": methods, "references": refs}
    return report


# --------------------------------------------------------------------------- writing


def fmt_ms(agg: dict[str, Any]) -> str:
    if agg["mean"] is None:
        return "-"
    return f"{agg['mean']:.4f} ± {agg['std']:.4f}"


def markdown(benches: Sequence[Benchmark], report: dict[str, Any], head: list[str]) -> str:
    lines = [*head, ""]
    for b in benches:
        r = report[b.name]
        lines += [f"## {b.title}", "",
                  f"Q = {b.score}; test = {b.test}. Mean ± std (ddof 1) over seeds "
                  f"{', '.join(map(str, b.seeds))}.", "",
                  "| method | workers | best Q | test at best Q | replay Q | replay test "
                  "| exploits | evaluator successes / assignments |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for method, m in r["methods"].items():
            runs = list(m["runs"].values())
            if not runs:
                lines.append(f"| {METHOD_LABEL.get(method, method)} | not run | | | | | | |")
                continue
            cfg = b.methods[method]["algorithm"]
            workers = cfg.get("population") or (
                cfg["subpopulations"] * cfg["subpopulation_size"] + cfg["evaluators"]
            )
            if method == "fire":
                workers = f"{workers} ({cfg['subpopulations']}×{cfg['subpopulation_size']}+{cfg['evaluators']})"
            exploits = statistics.fmean(x["exploits"] for x in runs)
            succ = sum(x["successes"] for x in runs) / len(runs)
            assigns = sum(x["assigns"] for x in runs) / len(runs)
            lines.append(
                f"| {METHOD_LABEL.get(method, method)} (n={len(runs)}) | {workers} | {fmt_ms(m['best'])} | "
                f"{fmt_ms(m['test'])} | {fmt_ms(m['replay'])} | {fmt_ms(m['replay_test'])} | "
                f"{exploits:.0f} | {succ:.1f} / {assigns:.1f} |"
            )
        for ref in r["references"].values():
            lines.append(f"| *{ref['label']}* | 1 | {ref['score']:.4f} | {ref['test']:.4f} | "
                         f"| | | |")  # fmt: skip
        lines += ["", "Per seed (best Q / test at best / replay Q / replay test):", ""]
        for method, m in r["methods"].items():
            per = "; ".join(
                f"seed {s}: {_f(x['best'])} / {_f(x['test'])} / {_f(x['replay'])} / "
                f"{_f(x['replay_test'])}"
                for s, x in m["runs"].items()
            )
            lines.append(f"- {METHOD_LABEL.get(method, method)}: {per}")
        fire = r["methods"].get("fire", {}).get("runs", {})
        if fire:
            lines += ["", "FIRE PBT evaluators, from the journal's `check` and `free` events "
                      "(per seed: checks by outcome; frees by reason; checks without overlap; "
                      "median p and best_score_diff of the successful checks; steps of the "
                      "successes, first / last):", ""]  # fmt: skip
            for seed, x in fire.items():
                steps = x["success_steps"]
                span = f"{steps[0]} / {steps[-1]}" if steps else "-"
                lines.append(
                    f"- seed {seed}: {_kv(x['check_outcomes'])}; frees {_kv(x['free_reasons'])}; "
                    f"no overlap {x['no_overlap_checks']}; median p {_g(x['success_p_median'])}, "
                    f"median diff {_g(x['success_diff_median'])}; successes at steps {span}"
                )
        lines += ["", *b.notes, ""] if b.notes else [""]
        for fig in r.get("figures", []):
            lines.append(f"![{fig}]({fig})")
        lines.append("")
    return "\n".join(lines)


def _kv(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "none"


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def figures(benches: Sequence[Benchmark], report: dict[str, Any], out: Path) -> None:
    from firepbt.report.plots import (
        best_curve,
        best_schedule,
        hparam_bands,
        render_best_curves,
        render_hparam_bands,
        render_schedules,
    )

    for b in benches:
        r = report[b.name]
        figs: list[str] = []
        r["figures"] = figs
        done = {m: [int(s) for s in r["methods"][m]["runs"]] for m in b.methods}
        if not any(done.values()):
            continue
        scheds = {
            METHOD_LABEL[m]: [best_schedule(out / b.name / f"{m}-seed{s}") for s in done[m]]
            for m in b.methods
        }
        refs = {v["label"]: v["schedule"] for v in r["references"].values()}
        p = render_schedules(scheds, out / f"{b.name}-fig1-schedules.png", name=b.hparam,
                             references=refs, title=f"{b.title}: best schedules")  # fmt: skip
        figs.append(p.name)
        for m in b.methods:
            if m == "random" or b.seeds[0] not in done[m]:
                continue
            run = out / b.name / f"{m}-seed{b.seeds[0]}"
            p = render_hparam_bands(hparam_bands(run), out / f"{b.name}-fig4a-{m}-seed{b.seeds[0]}.png",
                                    title=f"{b.title}: {METHOD_LABEL[m]}, seed {b.seeds[0]}")  # fmt: skip
            figs.append(p.name)
        curves = {
            METHOD_LABEL[m]: [best_curve(out / b.name / f"{m}-seed{s}") for s in done[m]]
            for m in b.methods
        }
        minimise = b.methods[next(iter(b.methods))]["direction"] == "min"
        p = render_best_curves(curves, out / f"{b.name}-fig4b-best.png",
                               ylabel=f"best {b.score}", log_y=minimise,
                               references={v["label"]: v["score"] for v in r["references"].values()},
                               title=f"{b.title}: best Q so far (mean, min-max over seeds)")  # fmt: skip
        figs.append(p.name)


def machine() -> str:
    import os

    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"


def write_report(
    benches: Sequence[Benchmark], out: Path, command: str, wall: float
) -> dict[str, Any]:
    report = collect(benches, out)
    figures(benches, report, out)
    run_seconds = sum(
        x["wall_seconds"]
        for r in report.values()
        for m in r["methods"].values()
        for x in m["runs"].values()
    )
    head = [
        "# firepbt benchmark report",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        (
            f"Wall time of the runs: {wall / 60:.1f} min (this invocation; finished runs are reused)  "
            if wall
            else "Report only (--report-only): no run in this invocation  "
        ),
        f"Sum of the runs' own wall times (timing.json): {run_seconds / 60:.1f} min",
    ]
    (out / "report.md").write_text(markdown(benches, report, head), encoding="utf-8")
    meta = {"command": command, "machine": machine(), "wall_seconds": wall,
            "run_seconds": run_seconds}  # fmt: skip
    (out / "report.json").write_text(
        json.dumps({"meta": meta, "benchmarks": report}, indent=1) + "\n"
    )
    return report
