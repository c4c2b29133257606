"""What a benchmark is: named configs per method, seeds, references, how to show scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Benchmark:
    """One table of the report: methods (config dicts) run over the same seeds.

    ``references`` (optional) computes reference schedules in a worker process:
    ``{key: {"label", "score", "test", "schedule"}}`` where ``score``/``test`` are in the
    benchmark's units; ``reference_key`` names the references shared by several
    benchmarks (computed once).
    """

    name: str
    title: str
    methods: dict[str, dict[str, Any]]
    seeds: list[int]
    score: str  # what Q is, e.g. "validation loss"
    test: str  # what the test score is
    hparam: str = "lr"  # plotted in Figure 1
    references: Callable[[], dict[str, dict[str, Any]]] | None = None
    reference_key: str = ""
    notes: list[str] = field(default_factory=list)
    #: Extra analysis after the runs: ``post(benchmark, report_entry, out)`` returns
    #: markdown lines for the report (and may add figures to ``report_entry``).
    post: Callable[[Benchmark, dict[str, Any], Path], list[str]] | None = None
    #: The score of the seed sweep's table and figure, per run directory, where the run's
    #: own one-seed replay is too noisy to rank methods by (the RL benchmarks: the mean
    #: of a multi-seed replay); ``sweep_what`` says what it is. None: the replay's test.
    sweep_score: Callable[[Path], float | None] | None = None
    sweep_what: str = "replay test score"


def algorithm(kind: str, workers: int, **fire: Any) -> dict[str, Any]:
    """The ``[algorithm]`` table: random / pbt with ``workers``, or FIRE's settings."""
    if kind == "fire":
        return {"name": "fire", **fire}
    return {"name": kind, "population": workers}


def fire_workers(table: dict[str, Any]) -> int:
    """Workers of a FIRE PBT ``[algorithm]`` table (one size, or a list of sizes)."""
    size = table["subpopulation_size"]
    members = sum(size) if isinstance(size, list) else table["subpopulations"] * size
    return int(members + table["evaluators"])


def run_seed(run: Path) -> int:
    """The seed of a sweep's run directory, named ``<method>-seed<N>``."""
    return int(run.name.rsplit("seed", 1)[1])


def parse_seeds(text: str) -> list[int]:
    """``0-9`` or ``0,1,5`` (or a mix: ``0-4,7``) as a sorted list of distinct seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"--seeds: expected e.g. 0-9 or 0,1,5 (seeds >= 0), got {text!r}")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise ValueError(f"--seeds: empty range {part.strip()!r}")
        seeds.update(range(a, b + 1))
    return sorted(seeds)
