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

import numpy as np

from benchmarks.common import Benchmark, fire_workers

METHOD_LABEL = {"random": "random search", "pbt": "PBT", "fire": "FIRE PBT",
                "pbt8": "PBT, 8 members", "pbt16": "PBT, 16 members"}  # fmt: skip


def label(method: str) -> str:
    """``fire@reseed`` -> ``FIRE PBT [reseed]``."""
    base, _, variant = method.partition("@")
    name = METHOD_LABEL.get(base, base)
    return f"{name} [{variant}]" if variant else name


# Start order: the NQM evidence first (cheap, three seeds), then the long MNIST-1D runs
# (FIRE PBT first: it is the slowest), then the rest; references last.
_PRIORITY = ["nqm-noise", "nqm-exact", "mnist1d", "nqm36-noise", "ppo-cartpole"]
_METHOD_ORDER = {"fire": 0, "pbt": 1, "random": 2}


def _order(job: dict[str, Any]) -> tuple[int, int, int, int]:
    bench = _PRIORITY.index(job["bench"]) if job["bench"] in _PRIORITY else len(_PRIORITY)
    if job["kind"] == "references":
        return (1, bench, 0, 0)
    method = job.get("method", "").partition("@")[0]
    return (0, bench, job.get("seed", 0), _METHOD_ORDER.get(method, 3))


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
        "reseeds": sum(1 for e in copies if e["reason"] == "reseed"),
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
            for s, x in runs.items():  # the seed sweep's score (the replay's test by default)
                run_dir = out / b.name / f"{method}-seed{s}"
                x["sweep_score"] = (
                    x["replay_test"] if b.sweep_score is None else b.sweep_score(run_dir)
                )
            agg = {c: mean_std([r[c] for r in runs.values()]) for c in COLUMNS}
            methods[method] = {"runs": runs, **agg}
        refs = {}
        path = out / f"references-{b.reference_key}.json"
        if b.references is not None and path.exists():
            refs = json.loads(path.read_text(encoding="utf-8"))
        report[b.name] = {"title": b.title, "methods": methods, "references": refs}
        report[b.name]["sweep"] = sweep(b, report[b.name])
    return report


# --------------------------------------------------------------------------- writing


def fmt_ms(agg: dict[str, Any]) -> str:
    if agg["mean"] is None:
        return "-"
    return f"{agg['mean']:.4f} ± {agg['std']:.4f}"


def headline(benches: Sequence[Benchmark], report: dict[str, Any]) -> list[str]:
    """One table of every benchmark's seed sweep (the README's headline is copied from it)."""
    rows = []
    for b in benches:
        for m, x in (report[b.name].get("sweep") or {}).items():
            rows.append(
                f"| {b.title} | {b.sweep_what} | {label(m)} | {x['n']} | {x['mean']:.4f} "
                f"| {x['median']:.4f} | {x['worst']:.4f} | {_frac(x, 'beats_pbt')} "
                f"| {_frac(x, 'beats_random')} |"
            )
    if not rows:
        return []
    return ["## Seed sweeps", "",
            "| benchmark | score | method | seeds | mean | median | worst seed | beats PBT | beats random search |",
            "|---|---|---|---|---|---|---|---|---|", *rows, ""]  # fmt: skip


def markdown(benches: Sequence[Benchmark], report: dict[str, Any], head: list[str]) -> str:
    lines = [*head, "", *headline(benches, report)]
    for b in benches:
        r = report[b.name]
        lines += [f"## {b.title}", "",
                  f"Q = {b.score}; test = {b.test}. Mean ± std (ddof 1) over the seeds "
                  f"each method ran (n in each row; seeds asked for: {_seeds(b.seeds)}).", "",
                  "| method | workers | best Q | test at best Q | replay Q | replay test "
                  "| exploits | evaluator successes / assignments |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for method, m in r["methods"].items():
            runs = list(m["runs"].values())
            if not runs:  # a variant asked for on several benchmarks, run on others only
                continue
            cfg = b.methods[method]["algorithm"]
            workers = cfg.get("population") or fire_workers(cfg)
            if method.startswith("fire"):
                size = cfg["subpopulation_size"]
                members = (
                    "+".join(map(str, size))
                    if isinstance(size, list)
                    else f"{cfg['subpopulations']}×{size}"
                )
                workers = f"{workers} ({members}+{cfg['evaluators']})"
            exploits = statistics.fmean(x["exploits"] for x in runs)
            succ = sum(x["successes"] for x in runs) / len(runs)
            assigns = sum(x["assigns"] for x in runs) / len(runs)
            lines.append(
                f"| {label(method)} (n={len(runs)}) | {workers} | {fmt_ms(m['best'])} | "
                f"{fmt_ms(m['test'])} | {fmt_ms(m['replay'])} | {fmt_ms(m['replay_test'])} | "
                f"{exploits:.0f} | {succ:.1f} / {assigns:.1f} |"
            )
        for ref in r["references"].values():
            lines.append(f"| *{ref['label']}* | 1 | {ref['score']:.4f} | {ref['test']:.4f} | "
                         f"| | | |")  # fmt: skip
        lines += ["", "Per seed (best Q / test at best / replay Q / replay test):", ""]
        for method, m in r["methods"].items():
            if not m["runs"]:
                continue
            per = "; ".join(
                f"seed {s}: {_f(x['best'])} / {_f(x['test'])} / {_f(x['replay'])} / "
                f"{_f(x['replay_test'])}"
                for s, x in m["runs"].items()
            )
            lines.append(f"- {label(method)}: {per}")
        for fm in [m for m in r["methods"] if m.startswith("fire")]:
            lines += _evaluator_lines(label(fm), r["methods"][fm]["runs"])
        lines += sweep_lines(b, r)
        lines += r.get("extra", [])
        lines += ["", *b.notes, ""] if b.notes else [""]
        for fig in r.get("figures", []):
            lines.append(f"![{fig}]({fig})")
        lines.append("")
    return "\n".join(lines)


def sweep(b: Benchmark, r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per method, over seeds, of the sweep score (the headline; the replay's test score
    unless the benchmark names another, ``Benchmark.sweep_score``): mean, median, worst
    seed, and for FIRE PBT (and variants) the fraction of the seeds run by both on which
    it beats PBT / random search of the same seed (ties count as half)."""
    minimise = b.methods[next(iter(b.methods))]["direction"] == "min"
    sign = -1.0 if minimise else 1.0
    vals = {
        m: {s: x["sweep_score"] for s, x in mm["runs"].items() if x["sweep_score"] is not None}
        for m, mm in r["methods"].items()
    }
    out: dict[str, dict[str, Any]] = {}
    for m, v in vals.items():
        if not v:
            continue
        xs = list(v.values())
        row: dict[str, Any] = {
            "n": len(xs),
            "mean": statistics.fmean(xs),
            "median": statistics.median(xs),
            "worst": min(xs, key=lambda x: sign * x),
            "best": max(xs, key=lambda x: sign * x),
        }
        if m.startswith("fire"):
            for other in ("pbt", "random"):
                common = sorted(set(v) & set(vals.get(other, {})), key=int)
                if common:
                    wins = sum(
                        1.0 if sign * v[s] > sign * vals[other][s]
                        else 0.5 if v[s] == vals[other][s] else 0.0
                        for s in common
                    )  # fmt: skip
                    row[f"beats_{other}"] = wins / len(common)
                    row[f"beats_{other}_n"] = len(common)
        out[m] = row
    return out


def sweep_lines(b: Benchmark, r: dict[str, Any]) -> list[str]:
    rows = r.get("sweep") or {}
    if not rows:
        return []
    lines = ["", f"Seed sweep ({b.sweep_what}; worst = the worst seed; beats = fraction of "
             "the seeds run by both on which it is better than that method's run of the same "
             "seed):", "",
             "| method | seeds | mean | median | worst seed | best seed | beats PBT | beats random search |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for m, x in rows.items():
        lines.append(
            f"| {label(m)} | {x['n']} | {x['mean']:.4f} | {x['median']:.4f} | {x['worst']:.4f} "
            f"| {x['best']:.4f} | {_frac(x, 'beats_pbt')} | {_frac(x, 'beats_random')} |"
        )
    return lines


def _frac(x: dict[str, Any], k: str) -> str:
    return f"{x[k]:.2f} ({x[k + '_n']})" if k in x else ""


def render_sweep(b: Benchmark, r: dict[str, Any], path: Path) -> Path:
    """The per-seed distribution of the sweep score, one column per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in r["methods"] if r["methods"][m]["runs"]]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(methods) + 2), 4))
    rng = np.random.default_rng(0)  # jitter only
    for i, m in enumerate(methods):
        ys = [x["sweep_score"] for x in r["methods"][m]["runs"].values()
              if x["sweep_score"] is not None]  # fmt: skip
        xs = i + rng.uniform(-0.12, 0.12, len(ys))
        ax.scatter(xs, ys, s=18, alpha=0.8, zorder=3)
        if ys:
            ax.hlines([statistics.median(ys)], i - 0.3, i + 0.3, color="k", lw=2, zorder=4)
            ax.hlines([statistics.fmean(ys)], i - 0.3, i + 0.3, color="k", lw=1, ls=":", zorder=4)
    for k, ref in enumerate(r["references"].values()):
        ax.axhline(ref["test"], color="grey", ls=["--", ":", "-."][k % 3], lw=1,
                   label=ref["label"])  # fmt: skip
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels(
        [label(m).replace(" [", "\n[").replace("+", "+\n") for m in methods], fontsize=8
    )
    ax.set_ylabel(b.sweep_what if b.sweep_score is not None else f"replay {b.test}")
    ax.set_title(f"{b.title}\nper seed; solid line: median, dotted: mean", fontsize=9)
    if r["references"]:  # below the axes: inside, "best" can still cover a column's points
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def _evaluator_lines(name: str, fire: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if fire:
        lines += ["", f"{name} evaluators, from the journal's `check` and `free` events "
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
    return lines


def _seeds(seeds: Sequence[int]) -> str:
    """``0-9`` for a contiguous range, else ``0, 3, 5``."""
    s = sorted(seeds)
    if len(s) > 2 and s == list(range(s[0], s[-1] + 1)):
        return f"{s[0]}-{s[-1]}"
    return ", ".join(map(str, s))


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
            label(m): [best_schedule(out / b.name / f"{m}-seed{s}") for s in done[m]]
            for m in b.methods
        }
        refs = {v["label"]: v["schedule"] for v in r["references"].values()}
        p = render_schedules(scheds, out / f"{b.name}-fig1-schedules.png", name=b.hparam,
                             references=refs, title=f"{b.title}: best schedules")  # fmt: skip
        figs.append(p.name)
        fires = [m for m in b.methods if m.startswith("fire")][:2]  # Figure 4a: PBT, 2 FIREs
        for m in b.methods:
            if (
                m.partition("@")[0] == "random"  # no hyperparameter changes to draw
                or b.seeds[0] not in done[m]
                or (m.startswith("fire") and m not in fires)
            ):
                continue
            run = out / b.name / f"{m}-seed{b.seeds[0]}"
            p = render_hparam_bands(hparam_bands(run), out / f"{b.name}-fig4a-{m}-seed{b.seeds[0]}.png",
                                    title=f"{b.title}: {label(m)}, seed {b.seeds[0]}")  # fmt: skip
            figs.append(p.name)
        curves = {
            label(m): [best_curve(out / b.name / f"{m}-seed{s}") for s in done[m]]
            for m in b.methods
        }
        minimise = b.methods[next(iter(b.methods))]["direction"] == "min"
        if len(b.seeds) > 1:
            figs.append(render_sweep(b, r, out / f"{b.name}-seeds.png").name)
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
    for b in benches:
        if b.post is not None and any(m["runs"] for m in report[b.name]["methods"].values()):
            report[b.name]["extra"] = b.post(b, report[b.name], out)
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
