"""Live progress: a callback (:mod:`firepbt.runner.callbacks`) that shows what the population does.

:class:`PopulationView` is a compact model of the population, rebuilt from the journal's
events alone (it never reads the runner), so it can also be fed a finished journal.
Two renderers sit on it: :class:`RichProgress` redraws a ``rich`` live panel (throttled,
at most ``1 / min_interval`` redraws a second) when stdout is a terminal;
:class:`PlainProgress` prints one line per ready interval (at most one every
``min_interval`` seconds) when it is not (CI, files). :func:`progress_observer` picks one.
``rich`` is optional (``pip install firepbt[live]``); without it the plain lines are used.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Iterable
from typing import IO, Any

from firepbt.report.results import fmt
from firepbt.runner.best import BestSoFar
from firepbt.runner.callbacks import Callback, RunInfo
from firepbt.runner.events import Event as TypedEvent

Event = dict[str, Any]


class PopulationView:
    """What the live view shows, kept up to date from events (``update``)."""

    def __init__(self, recent: int = 5) -> None:
        self.roles: list[tuple[str, int]] = []
        self.steps = 0
        self.ready_interval = 0
        self.sign = 1.0  # +1 when higher scores are better
        self.algorithm = ""
        self.step: dict[int, int] = {}
        # members by sub-population (None: all), fixed at the start event, and how many
        # members are at each step, so that done() costs O(1) per event, not O(workers)
        self._members: dict[int | None, list[int]] = {}
        self._at_step: dict[int, int] = {}
        self._done = 0
        self.score: dict[int, float | None] = {}
        self.hparams: dict[int, dict[str, Any]] = {}
        # the run's best by its rule, as the progress lines and result.json pick it
        self.picker = BestSoFar()
        self.evaluators: dict[int, dict[str, Any]] = {}
        self.recent: deque[str] = deque(maxlen=recent)
        self.counts = {
            "exploit": 0,
            "success": 0,
            "assign": 0,
            "stop": 0,
            "diverged": 0,
            "errors": 0,  # results whose train/evaluate raised (report/notices.py shows why)
            "faults": 0,  # worker processes or actors that died or overran task_timeout
        }
        self.ended = False

    # -- events -----------------------------------------------------------------------

    def update(self, ev: Event) -> None:
        kind = ev.get("ev")
        if kind == "start":
            self.roles = [(str(r), int(s or 0)) for r, s in ev["roles"]]
            cfg = ev.get("config", {})
            self.steps = int(cfg.get("steps", 0))
            self.ready_interval = int(cfg.get("ready_interval", 0))
            self.sign = -1.0 if cfg.get("direction") == "min" else 1.0
            self.algorithm = str(cfg.get("algorithm", {}).get("name", ""))
            # journals from before the setting existed used the paper's rule
            self.picker = BestSoFar(
                str(cfg.get("best", "highest")), self.steps, str(cfg.get("direction", "max"))
            )
            self._index_members()
        elif kind == "result":
            w, score = ev["worker"], ev["score"]
            self._set_step(w, ev["step"])
            self.hparams[w] = dict(ev["hparams"])
            self.score[w] = score
            e = self.evaluators.get(w)
            if e is not None:  # steps trained since the assignment's copy
                if e["fresh"]:
                    e["fresh"], e["from"] = False, ev["start"]
                e["trained"] = ev["step"] - e["from"]
            if "error_id" in ev:
                self.counts["errors"] += 1
            if score is None:
                self.counts["diverged"] += 1
            else:
                role, subpop = self.roles[w] if w < len(self.roles) else ("", 0)
                self.picker.offer(score, role, subpop, ev["step"], (w, ev["step"]))
        elif kind == "hparams":
            self.hparams[ev["worker"]] = dict(ev["hparams"])
        elif kind == "copy":
            src, dst, reason = ev["src"], ev["dst"], ev["reason"]
            self._set_step(dst, ev["step"])
            self.score[dst] = self.score.get(src)
            if reason in ("exploit", "success"):
                self.counts[reason] += 1
                self.recent.append(
                    f"step {ev['step']}: {reason} {self.name(src)} -> {self.name(dst)}"
                )
        elif kind == "assign":
            self.counts["assign"] += 1
            self.evaluators[ev["evaluator"]] = {
                "parent": ev["parent"],
                "target": ev["target"],
                "p": None,
                "threshold": None,
                "diff": None,
                "trained": 0,
                "fresh": True,  # no result since the assignment
                "from": 0,
            }
        elif kind == "free":
            if ev["reason"] == "stop":
                self.counts["stop"] += 1
            self.evaluators.pop(ev["evaluator"], None)
        elif kind == "check":
            # The loop journals checks after the commands they caused, so a check can follow
            # the free and a re-assignment of its evaluator: it belongs to the old one.
            e = self.evaluators.get(ev["evaluator"])
            if e is not None and not e["fresh"]:
                e.update({k: ev.get(k) for k in ("p", "threshold", "diff")})
        elif kind == "fault":
            self.counts["faults"] += 1
        elif kind == "end":
            self.ended = True

    def _index_members(self) -> None:
        self._members = {None: []}
        for w, (r, s) in enumerate(self.roles):
            if r == "member":
                self._members[None].append(w)
                self._members.setdefault(s, []).append(w)
        self._at_step = {}
        for w in self._members[None]:
            st = self.step.get(w, 0)
            self._at_step[st] = self._at_step.get(st, 0) + 1
        self._done = min(self._at_step, default=0)

    def _set_step(self, w: int, step: int) -> None:
        """Record worker ``w`` at ``step``, keeping the members' minimum step current."""
        old = self.step.get(w, 0)
        self.step[w] = step
        if old == step or not self._at_step or w >= len(self.roles):
            return
        if self.roles[w][0] != "member":
            return
        n = self._at_step[old] - 1
        if n:
            self._at_step[old] = n
        else:
            del self._at_step[old]
        self._at_step[step] = self._at_step.get(step, 0) + 1
        if step < self._done:
            self._done = step
        elif old == self._done and not n:
            self._done = min(self._at_step)  # distinct steps: a handful

    # -- what is shown ----------------------------------------------------------------

    def name(self, w: int) -> str:
        if w >= len(self.roles):
            return f"worker {w}"
        role, subpop = self.roles[w]
        if role != "member":
            return f"evaluator {w}"
        return f"P{subpop}/{w}" if self.algorithm == "fire" else f"member {w}"

    def group(self, subpop: int) -> str:
        """A sub-population's name: FIRE's P1, P2, ...; PBT and random search have one."""
        return f"P{subpop}" if self.algorithm == "fire" else "population"

    def subpopulations(self) -> list[int]:
        return sorted({s for r, s in self.roles if r == "member"})

    def members(self, subpop: int | None = None) -> list[int]:
        return list(self._members.get(subpop, ()))

    def done(self) -> int:
        """Steps every member has reached (the slowest member's step)."""
        return self._done

    def hparam_ranges(self, subpop: int) -> dict[str, str]:
        values: dict[str, list[Any]] = {}
        for w in self.members(subpop):
            for k, v in self.hparams.get(w, {}).items():
                values.setdefault(k, []).append(v)
        out = {}
        for k, vs in values.items():
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vs):
                lo, hi = min(vs), max(vs)
                out[k] = fmt(lo) if lo == hi else f"{fmt(lo)}–{fmt(hi)}"
            else:
                out[k] = ",".join(sorted({str(v) for v in vs}))
        return out

    def best_fitness(self, subpop: int) -> str:
        """P1: the best latest score. A parent: the best diff of its evaluators' checks."""
        if subpop == 1 or self.algorithm != "fire":
            scores = [self.score.get(w) for w in self.members(subpop)]
            finite = [s for s in scores if s is not None and math.isfinite(s)]
            if not finite:
                return "-"
            return fmt(max(finite, key=lambda s: self.sign * s))
        parents = set(self.members(subpop))
        diffs = [
            e["diff"]
            for e in self.evaluators.values()
            if e["parent"] in parents and e["diff"] is not None
        ]
        return f"diff {fmt(max(diffs))}" if diffs else "-"

    @property
    def best(self) -> tuple[float, int, int] | None:
        """(score, worker, step) of the run's best so far by its ``best`` rule: under
        ``"final"`` (the default) P_1's highest reading until its members reach the
        budget, then the best final one (``runner/best.py: BestSoFar``)."""
        got = self.picker.chosen()
        return None if got is None else (got[0], *got[1])

    def headline(self) -> str:
        best = "-" if self.best is None else f"{fmt(self.best[0])} ({self.name(self.best[1])})"
        c = self.counts
        done = self.done()
        text = f"step {done}/{self.steps} ({max(0, self.steps - done)} left)  best {best}"
        text += f"  exploits {c['exploit']}"
        if self.algorithm == "fire":
            text += f"  successes {c['success']}/{c['assign']}"
        if c["diverged"]:
            text += f"  diverged {c['diverged']}"
        if c["errors"]:
            text += f" (errors {c['errors']})"
        if c["faults"]:
            text += f"  faults {c['faults']}"
        return text

    def line(self) -> str:
        """One plain-text line: the headline and, per sub-population, ranges and fitness."""
        parts = [self.headline()]
        for s in self.subpopulations():
            ranges = " ".join(f"{k} {v}" for k, v in self.hparam_ranges(s).items())
            parts.append(f"{self.group(s)}: {ranges} fit {self.best_fitness(s)}")
        return "  |  ".join(parts)


class _ViewCallback(Callback):
    """The callback side of the renderers: each event as its journal dict to ``__call__``;
    on resume the view is first rebuilt from the journal so far."""

    view: PopulationView

    def __call__(self, ev: Event) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop drawing (the renderers override it)."""
        pass

    def catch_up(self, events: Iterable[Event]) -> None:
        """Rebuild the view from the journal so far (the renderers override it)."""
        for ev in events:
            self.view.update(ev)

    def on_run_start(self, info: RunInfo) -> None:
        """On resume, rebuild the view from the journal so far, printing nothing."""
        if info.history:
            self.catch_up(ev.to_dict() for ev in info.history)

    def on_event(self, event: TypedEvent) -> None:
        """Draw from the event's journal form."""
        self(event.to_dict())

    def on_run_end(self, info: RunInfo, result: dict[str, Any] | None) -> None:
        """Stop drawing."""
        self.close()


class PlainProgress(_ViewCallback):
    """Plain log lines: one per ready interval reached, at most one every ``min_interval`` s."""

    def __init__(self, stream: IO[str] | None = None, min_interval: float = 2.0) -> None:
        self.view = PopulationView()
        self.stream = stream or sys.stdout
        self.min_interval = min_interval
        self.t0 = time.perf_counter()
        self.last_time = -math.inf
        self.last_step = 0
        self.printed = ""

    def __call__(self, ev: Event) -> None:
        self.view.update(ev)
        now = time.perf_counter()
        if ev["ev"] == "end":
            if self.printed != self.view.line():  # the last ready line may already say it
                self.print(now)
            return
        if ev["ev"] != "result" or not self.view.ready_interval:
            return
        done = self.view.done()
        if done - self.last_step >= self.view.ready_interval and (
            now - self.last_time >= self.min_interval
        ):
            self.last_step = done - done % self.view.ready_interval
            self.print(now)

    def catch_up(self, events: Iterable[Event]) -> None:
        """Rebuild the view from the journal of a resumed run, printing nothing."""
        for ev in events:
            self.view.update(ev)
        done = self.view.done()
        ri = self.view.ready_interval
        self.last_step = done - done % ri if ri else done

    def print(self, now: float) -> None:
        self.last_time = now
        self.printed = self.view.line()
        self.stream.write(f"[{now - self.t0:7.1f}s] {self.printed}\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class RichProgress(_ViewCallback):
    """A ``rich`` live panel, redrawn at most once every ``min_interval`` seconds."""

    def __init__(self, console: Any = None, min_interval: float = 0.25) -> None:
        from rich.console import Console
        from rich.live import Live

        self.view = PopulationView()
        self.console = console or Console()
        self.min_interval = min_interval
        self.t0 = time.perf_counter()
        self.last = -math.inf
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self.started = False

    def __call__(self, ev: Event) -> None:
        self.view.update(ev)
        if not self.started:
            self.live.start()
            self.started = True
        now = time.perf_counter()
        if ev["ev"] == "end" or now - self.last >= self.min_interval:
            self.last = now
            self.live.update(self.render(), refresh=True)
        if ev["ev"] == "end":
            self.close()

    def catch_up(self, events: Iterable[Event]) -> None:
        """Rebuild the view from the journal of a resumed run (drawn at the next event)."""
        for ev in events:
            self.view.update(ev)

    def close(self) -> None:
        if self.started:
            self.live.stop()
            self.started = False

    def render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        v = self.view
        head = Text(f"{time.perf_counter() - self.t0:.0f}s  {v.headline()}", style="bold")
        pops = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("sub-population", "members", "hyperparameters", "best fitness"):
            pops.add_column(col)
        for s in v.subpopulations():
            ranges = "  ".join(f"{k} {r}" for k, r in v.hparam_ranges(s).items())
            pops.add_row(v.group(s), str(len(v.members(s))), ranges, v.best_fitness(s))
        parts: list[Any] = [head, pops]
        if v.evaluators:
            evs = Table(box=None, pad_edge=False, header_style="bold")
            for col in ("evaluator", "parent", "target", "trained", "p", "threshold", "diff"):
                evs.add_column(col)
            for e, info in sorted(v.evaluators.items()):
                evs.add_row(
                    str(e),
                    v.name(info["parent"]),
                    v.name(info["target"]),
                    fmt(info["trained"]),
                    fmt(info["p"]),
                    fmt(info["threshold"]),
                    fmt(info["diff"]),
                )
            parts.append(evs)
        if v.recent:
            parts.append(Text("\n".join(v.recent), style="dim"))
        return Group(*parts)


def progress_observer(
    quiet: bool = False, stream: IO[str] | None = None
) -> PlainProgress | RichProgress | None:
    """The live view for a terminal, plain lines otherwise, nothing when ``quiet``."""
    if quiet:
        return None
    stream = stream or sys.stdout
    if stream.isatty():
        try:
            from rich.console import Console
        except ImportError:
            return PlainProgress(stream)
        return RichProgress(Console(file=stream))
    return PlainProgress(stream)
