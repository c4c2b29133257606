"""The ``firepbt`` command line: run, resume, demo, show, replay, plot, compare, configs.

Every error found before training (a bad config, an unimportable trainable, a run
directory that is not a run) prints one line and exits with status 2. A bug in the
trainable's code that stops a run (no network ever trained) prints its traceback and
exits with status 1. An interrupted run (Ctrl-C, SIGTERM) exits with 130 or 143 and says
how to continue it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from firepbt.config import Config, load_config
from firepbt.core.errors import ConfigError, ExecutorError, UserCodeError

EXIT_USAGE = 2
EXIT_USER_CODE = 1
_running: Path | None = None  # the run directory a run or resume command is driving


class Terminated(KeyboardInterrupt):
    """SIGTERM: unwind like Ctrl-C, so that workers stop and temporary files go."""


def bundled_configs() -> dict[str, Path]:
    root = resources.files("firepbt") / "configs"
    return {
        p.name.removesuffix(".toml"): Path(str(p))
        for p in root.iterdir()
        if p.name.endswith(".toml")
    }


def resolve_config_path(name: str) -> Path:
    p = Path(name)
    if p.exists():
        return p
    bundled = bundled_configs()
    if name in bundled:
        return bundled[name]
    raise ConfigError(
        f"config: {name} not found (not a file, nor a bundled config: {', '.join(sorted(bundled))})"
    )


def _load(name: str, seed: int | None, overrides: Sequence[str]) -> Config:
    notes: list[str] = []
    config = load_config(resolve_config_path(name), list(overrides), notes=notes)
    for note in notes:
        print(f"firepbt: note: {note}", file=sys.stderr)
    return config.with_seed(seed) if seed is not None else config


def _run_with_progress(config: Config, out: Path, quiet: bool) -> dict[str, Any]:
    """Run with the live view (plain lines when stdout is not a terminal; none if quiet)."""
    from firepbt.api import run
    from firepbt.report.live import progress_observer

    global _running
    _running = out
    view = progress_observer(quiet)
    try:
        return run(config, out, callbacks=[view] if view else None)
    finally:
        if view is not None:
            view.close()


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config, args.seed, args.set)
    out = Path(args.out or f"runs/{Path(args.config).stem}-seed{config.seed}")
    t0 = time.perf_counter()
    result = _run_with_progress(config, out, args.quiet)
    _report(out, result, t0)
    return 0


def _report(out: Path, result: dict[str, Any], t0: float) -> None:
    from firepbt.report.results import format_table, schedule_text, summary_rows

    print(format_table(summary_rows([(str(out), result)])))
    if result["best"]:
        print(f"best schedule ({result['best']['role']} {result['best']['member']}):")
        print(schedule_text(result["best"]["schedule"]))
    print(f"wrote {out}/result.json in {time.perf_counter() - t0:.1f}s")


def cmd_resume(args: argparse.Namespace) -> int:
    from firepbt.api import resume

    out = Path(args.dir)
    config = _load(args.config, None, args.set) if args.config else None
    if args.set and not args.config:
        raise ConfigError("--set: needs --config (the config to check the run against)")
    from firepbt.report.live import progress_observer

    global _running
    _running = out
    t0 = time.perf_counter()
    view = progress_observer(args.quiet)
    try:
        result = resume(out, config=config, callbacks=[view] if view else None)
    finally:
        if view is not None:
            view.close()
    if result is None:
        print(f"{out}: the run already finished ({out}/result.json); nothing to resume")
        return 0
    _report(out, result, t0)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """FIRE PBT vs PBT vs random search on the bundled NQM benchmark."""
    from firepbt.report.results import format_table, summary_rows

    out = Path(args.out)
    rows = []
    for name in ("nqm-random", "nqm-pbt", "nqm-fire"):
        config = _load(name, args.seed, args.set)
        run_dir = out / name
        if (run_dir / "events.jsonl").exists() and not args.quiet:
            print(f"{run_dir} exists: showing the previous run (delete it to run again)")
        t0 = time.perf_counter()
        if not (run_dir / "result.json").exists():
            print(
                f"running {name} ({config.algorithm.name}, {config.workers} workers) ...",
                flush=True,
            )
            result = _run_with_progress(config, run_dir, args.quiet)
            print(f"  done in {time.perf_counter() - t0:.1f}s", flush=True)
        else:
            from firepbt.report.results import load_result

            result = load_result(run_dir)
        rows.append((name, result))
    print()
    print(
        "NQM (loss, lower is better): the best network's validation loss (the best final "
        "network of P1), its test loss, P1's lowest loss at any step, replay"
    )
    print(format_table(summary_rows(rows)))
    try:
        from firepbt.report.plots import plot_run  # noqa: F401  (optional: needs matplotlib)
    except ImportError:
        return 0
    for name, _ in rows:
        for path in plot_run(out / name):
            print(f"plot: {path}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from firepbt.report.results import (
        errors_from_journal,
        errors_text,
        format_table,
        load_result,
        schedule_text,
        summary_rows,
    )

    unfinished = [d for d in args.dirs if _stopped(Path(d))]
    for d in unfinished:
        errors, aborted = errors_from_journal(d)
        print(f"{d}: not finished" + (f"; {aborted}" if aborted else ""))
        if errors:
            print(
                "errors in the trainable's code: distinct exceptions, with how many tasks each failed"
            )
            print(errors_text(errors))
    results = [(d, load_result(d)) for d in args.dirs if d not in unfinished]
    if not results:
        return 0
    print(format_table(summary_rows(results)))
    if len(results) == 1 and results[0][1].get("best"):
        best = results[0][1]["best"]
        print(f"best schedule ({best['role']} {best['member']}, step {best['step']}):")
        print(schedule_text(best["schedule"]))
    for d, r in results:
        if r.get("errors"):
            head = "errors in the trainable's code" + (f" ({d})" if len(results) > 1 else "")
            print(f"{head}: distinct exceptions, with how many tasks each failed")
            print(errors_text(r["errors"]))
    return 0


def _stopped(run_dir: Path) -> bool:
    """A run directory with a journal but no result: killed, or stopped for a bug."""
    return (run_dir / "events.jsonl").is_file() and not (run_dir / "result.json").is_file()


def cmd_replay(args: argparse.Namespace) -> int:
    from firepbt.core.trainable import TrainableSpec
    from firepbt.executors import make_executor
    from firepbt.report.notices import fault_text
    from firepbt.report.results import load_result
    from firepbt.runner.setup import seeds_for

    run_dir = Path(args.dir)
    result = load_result(run_dir)
    cfg = Config.from_dict(result["config"], search_path=str(Path.cwd()))
    if not result.get("best"):
        raise ConfigError(f"{run_dir}: the run recorded no finite score; nothing to replay")
    _, _, replay_seed = seeds_for(cfg.seed, cfg.workers)
    seed = args.seed if args.seed is not None else replay_seed
    spec = TrainableSpec(cfg.trainable, cfg.args, cfg.search_path)
    # on a worker of the run's executor (its device, its Ray cluster), not in this process
    executor = make_executor(replace(cfg, slots=1))
    try:
        executor.start(spec, [seed])
        out = executor.replay(spec, seed, result["best"]["schedule"], cfg.eval_interval)
    finally:
        for fault in executor.take_faults():  # a worker lost or timed out: say so
            print(f"firepbt replay: {fault_text(fault)}", file=sys.stderr)
        executor.close()
    print(json.dumps({"seed": seed, **out}))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from firepbt.report.compare import runs_under
    from firepbt.report.plots import plot_run

    runs = list(runs_under(args.dir))
    if not runs:
        raise ConfigError(f"{args.dir}: no run found (no events.jsonl at or below it)")
    formats = _formats(args.format)
    for run_dir in runs:
        for path in plot_run(run_dir, formats=formats):
            print(f"plot: {path}")
    return 0


def _formats(text: str) -> tuple[str, ...]:
    from firepbt.report.plots import FORMATS

    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"--format: expected some of {','.join(FORMATS)}, got {text!r}")
    return formats


def cmd_compare(args: argparse.Namespace) -> int:
    """Runs grouped by algorithm: the best score against step (mean ± std over the runs
    of each algorithm, the paper's Figure 4b) and a table of mean ± std (Table 1)."""
    from firepbt.report.compare import compare_runs, runs_under
    from firepbt.report.results import compare_rows, format_table, load_result

    formats = _formats(args.format)
    runs = [r for d in args.dirs for r in runs_under(d)]
    if not runs:
        raise ConfigError(f"{' '.join(args.dirs)}: no run found (no events.jsonl at or below)")
    finished = [(r, load_result(r)) for r in runs if (r / "result.json").is_file()]
    if not finished:
        raise ConfigError(f"{' '.join(args.dirs)}: no finished run (no result.json)")
    directions = {res["direction"] for _, res in finished}
    if len(directions) > 1:
        raise ConfigError("compare: the runs do not share one direction (some max, some min)")
    header, rows = compare_rows(finished)
    print(format_table(rows, header))
    unfinished = len(runs) - len(finished)
    if unfinished:
        print(f"({unfinished} unfinished run(s) left out of the table, drawn in the figure)")
    out = Path(args.out)
    try:
        drawn = compare_runs(runs, out, formats=formats)
    except ImportError:
        print("(no figure: matplotlib is not installed; pip install 'firepbt[plot]')")
        return 0
    for path in drawn["paths"]:
        print(f"plot: {path}")
    return 0


def cmd_configs(args: argparse.Namespace) -> int:
    for name, path in sorted(bundled_configs().items()):
        print(f"{name:16s} {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="firepbt", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "run", help="run an experiment from a TOML config (a path or a bundled name)"
    )
    r.add_argument("config")
    r.add_argument("--out", help="run directory (default runs/<config>-seed<N>)")
    r.add_argument("--seed", type=int)
    r.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field"
    )
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_run)
    rs = sub.add_parser(
        "resume", help="continue a run whose controller was killed, from its last checkpoint"
    )
    rs.add_argument("dir")
    rs.add_argument(
        "--config", help="refuse to resume unless the run was made with this config (+ --set)"
    )
    rs.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    rs.add_argument("--quiet", action="store_true")
    rs.set_defaults(func=cmd_resume)
    d = sub.add_parser("demo", help="FIRE PBT vs PBT vs random search on the bundled NQM benchmark")
    d.add_argument("--out", default="firepbt-demo")
    d.add_argument("--seed", type=int)
    d.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)
    s = sub.add_parser("show", help="summary table of finished runs")
    s.add_argument("dirs", nargs="+")
    s.set_defaults(func=cmd_show)
    rp = sub.add_parser("replay", help="train a fresh network along a run's best schedule")
    rp.add_argument("dir")
    rp.add_argument("--seed", type=int)
    rp.set_defaults(func=cmd_replay)
    pl = sub.add_parser("plot", help="figures (PNG) of a run, or of every run below DIR")
    pl.add_argument("dir")
    pl.add_argument("--format", default="png", help="comma-separated: png, svg, pdf (default png)")
    pl.set_defaults(func=cmd_plot)
    cp = sub.add_parser(
        "compare",
        help="runs grouped by algorithm (e.g. RS, PBT, FIRE PBT over seeds): best score "
        "against step (mean ± std) and a table of mean ± std",
    )
    cp.add_argument("dirs", nargs="+", help="run directories, or directories holding runs")
    cp.add_argument("--out", default="compare", help="where the figure goes (default compare/)")
    cp.add_argument("--format", default="png", help="comma-separated: png, svg, pdf")
    cp.set_defaults(func=cmd_compare)
    c = sub.add_parser("configs", help="list the bundled configs")
    c.set_defaults(func=cmd_configs)
    return p


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def _resume_hint() -> str:
    out = _running
    if out is None or not (out / "run.json").is_file() or (out / "result.json").is_file():
        return ""
    return f"; continue the run with: firepbt resume {out}"


def main(argv: Sequence[str] | None = None) -> int:
    global _running
    args = parser().parse_args(argv)
    _running = None
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        print(f"firepbt: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UserCodeError as exc:
        # the notices printed each distinct error's traceback when it first happened
        if exc.traceback and not exc.shown:  # a test()'s: training went well, resume
            print(exc.traceback.rstrip(), file=sys.stderr)
            hint = _resume_hint().replace("; continue", "; once it is fixed, continue")
            print(f"firepbt: error: {exc}{hint}", file=sys.stderr)
            return EXIT_USER_CODE
        print(f"firepbt: error: {exc}", file=sys.stderr)
        if exc.traceback and exc.shown:
            print(
                "firepbt: its traceback is printed above, where it first happened", file=sys.stderr
            )
        return EXIT_USER_CODE
    except ExecutorError as exc:  # training had started: its last checkpoint resumes it
        print(f"firepbt: error: {exc}{_resume_hint()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"firepbt: {what}{_resume_hint()}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _entry() -> Any:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
