"""Reading runs back: result files and the summary table of ``firepbt show``."""

from __future__ import annotations

import json
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


HEADER = [
    "run",
    "algorithm",
    "workers",
    "mode",
    "best Q",
    "test@best",
    "step",
    "best P1",
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
