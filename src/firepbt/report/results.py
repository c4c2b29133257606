"""Reading runs back: result files and the summary table of ``firepbt show``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from firepbt.core.errors import ConfigError
from firepbt.runner.best import RESULT_FILE


def load_result(run_dir: str | Path) -> dict[str, Any]:
    """``DIR/result.json`` of a finished run (ConfigError if there is none or it is unreadable)."""
    p = Path(run_dir) / RESULT_FILE
    if not p.is_file():
        raise ConfigError(f"{run_dir}: not a finished firepbt run (no {RESULT_FILE})")
    try:
        data: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: unreadable ({exc})") from None
    return data


def fmt(value: Any) -> str:
    """A table cell: '-' for None, 4 significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_rows(results: Sequence[tuple[str, dict[str, Any]]]) -> list[list[str]]:
    """One table row per ``(name, result)``, in the columns of :data:`HEADER`."""
    rows = []
    for name, r in results:
        best = r.get("best") or {}
        p1 = r.get("best_p1") or {}
        replay = r.get("replay") or {}
        counts = r.get("counts", {})
        rows.append(
            [
                name,
                r["algorithm"],
                str(r["workers"]),
                r["mode"],
                fmt(best.get("score")),
                fmt(best.get("test")),
                fmt(best.get("step")),
                fmt(p1.get("score")),
                fmt(replay.get("score")),
                fmt(replay.get("test")),
                str(counts.get("exploit", 0)),
                f"{counts.get('success', 0)}/{counts.get('assign', 0)}",
            ]
        )
    return rows


#: the columns: "best Q", "test@best" and "step" describe the run's best network (under
#: ``best = "final"``, the default, the best final network of P_1); "P1 peak" is P_1's
#: highest reading at any step (``best_p1``, the paper's "current best effort"), which
#: under "final" may be higher than the best network's own final Q
HEADER = [
    "run",
    "algorithm",
    "workers",
    "mode",
    "best Q",
    "test@best",
    "step",
    "P1 peak",
    "replay Q",
    "replay test",
    "exploits",
    "eval success",
]


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=False))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)))
    return "\n".join(lines)


def schedule_text(schedule: Sequence[dict[str, Any]]) -> str:
    """A schedule as text, one ``[start, end)  hparams`` line per segment."""
    parts = []
    for seg in schedule:
        hp = ", ".join(f"{k}={fmt(v)}" for k, v in seg["hparams"].items())
        parts.append(f"  [{seg['start']:>7}, {seg['end']:>7})  {hp}")
    return "\n".join(parts)


def errors_text(errors: Sequence[dict[str, Any]]) -> str:
    """The distinct errors of the trainable's code (``result.json``'s ``errors``)."""
    lines = []
    for e in errors:
        where = f"  at {e['where']}" if e.get("where") else ""
        first = f"  (first: worker {e.get('worker')}, step {e.get('step')})"
        lines.append(f"  {e['count']:>6}x  {e['error']}{where}{first}")
    return "\n".join(lines)


ALGORITHM_LABEL = {"random": "random search", "pbt": "PBT", "fire": "FIRE PBT"}
ALGORITHM_ORDER = ("random", "pbt", "fire")


def mean_std(values: Sequence[float | None]) -> str:
    """``mean ± std`` (sample std) of the finite values, with ``(n=k)`` if some are missing."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return "-"
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    text = f"{mean:.4g} ± {sd:.2g}"
    return text if len(xs) == len(values) else f"{text} (n={len(xs)})"


def compare_rows(
    results: Sequence[tuple[Any, dict[str, Any]]],
) -> tuple[list[str], list[list[str]]]:
    """The paper's Table 1 for finished runs grouped by algorithm: mean ± std over the
    runs (seeds) of the best Q, the test score at that point and the replay."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for _, r in results:
        groups.setdefault(str(r["algorithm"]), []).append(r)
    order = sorted(groups, key=lambda a: (ALGORITHM_ORDER + (a,)).index(a))
    header = ["algorithm", "runs", "best Q", "test@best", "replay Q", "replay test"]
    rows = []
    for algo in order:
        rs = groups[algo]

        def col(key: str, field: str, rs: list[dict[str, Any]] = rs) -> str:
            return mean_std([(r.get(key) or {}).get(field) for r in rs])

        rows.append(
            [
                ALGORITHM_LABEL.get(algo, algo),
                str(len(rs)),
                col("best", "score"),
                col("best", "test"),
                col("replay", "score"),
                col("replay", "test"),
            ]
        )
    return header, rows


def errors_from_journal(run_dir: str | Path) -> tuple[list[dict[str, Any]], str | None]:
    """The distinct errors of a run that did not finish (from ``events.jsonl``), and why
    it stopped (the ``abort`` event's message, if the run stopped for a bug)."""
    from firepbt.runner.journal import read_events

    errors: dict[int, dict[str, Any]] = {}
    aborted = None
    for ev in read_events(run_dir):
        if ev.get("ev") == "user_error":
            keep = ("id", "error", "where", "worker", "step")
            errors[int(ev["id"])] = {**{k: ev.get(k) for k in keep}, "count": 0}
        elif ev.get("ev") == "result" and "error_id" in ev:
            errors[int(ev["error_id"])]["count"] += 1
        elif ev.get("ev") == "abort":
            aborted = str(ev.get("message"))
    rows = sorted(errors.values(), key=lambda e: (-e["count"], e["id"]))
    return rows, aborted
