"""``end = "p1"``: an asynchronous run ends when P_1 reaches the budget (issue 12).

Under SPEC's end rule an asynchronous FIRE PBT run waits for every member of every
sub-population; a straggler of a parent sub-population, which no exploit carries forward
as PBT's exploits carry its slow members, then holds the whole run up
(benchmarks/RESULTS.md, "The simulated executor: virtual time"). ``Raced`` (from
test_async_budget) gives each worker its own speed on a virtual clock, so the straggler is
placed deterministically: every member of P_2 is four times slower than the others.
"""

from __future__ import annotations

import json

import pytest
from test_async_budget import Raced
from test_executors import check_accounting, config

from firepbt.api import run
from firepbt.executors.simulated import SimulatedExecutor

SLOW = 0.25


def slow_parents(cfg):
    p1, members = cfg.algorithm.sizes[0], sum(cfg.algorithm.sizes)
    return lambda w: SLOW if p1 <= w < members else 1.0


def lines(path):
    """The journal's lines after the start event (which holds the config)."""
    return (path / "events.jsonl").read_text().splitlines()[1:]


@pytest.mark.parametrize("seed", [3, 4])
def test_p1_end_stops_at_p1s_budget_and_is_the_same_run_until_then(tmp_path, seed):
    every, p1 = (
        config("fire", mode="async", seed=seed, end="all"),
        config("fire", mode="async", seed=seed),  # end = "p1", the default
    )
    ex_all, ex_p1 = Raced(slow_parents(every)), Raced(slow_parents(p1))
    run(every, tmp_path / "all", executor=ex_all)
    run(p1, tmp_path / "p1", executor=ex_p1)

    check_accounting(tmp_path / "all", 300)  # SPEC's rule: every member at the budget
    at = list(check_accounting(tmp_path / "p1", 300).values())  # by worker id
    size1, members = p1.algorithm.sizes[0], sum(p1.algorithm.sizes)
    assert at[:size1] == [300] * size1  # P_1 reached the budget, no member trained past it
    assert all(s <= 300 for s in at[:members])
    assert min(at[size1:members]) < 300  # the slow parents were stopped on the way
    assert ex_p1.now < ex_all.now  # ... and the run ended sooner (virtual time)

    # the same decisions up to the end: the shorter journal is the longer one's start
    short, full = lines(tmp_path / "p1"), lines(tmp_path / "all")
    assert json.loads(short[-1])["ev"] == "end" and json.loads(full[-1])["ev"] == "end"
    assert len(short) < len(full) and short[:-1] == full[: len(short) - 1]
    assert json.loads((tmp_path / "p1" / "result.json").read_text())["config"]["end"] == "p1"
    assert json.loads((tmp_path / "all" / "result.json").read_text())["config"]["end"] == "all"


@pytest.mark.parametrize("algo, mode", [("fire", "sync"), ("pbt", "async"), ("pbt", "sync")])
def test_p1_end_is_the_same_end_where_p1_cannot_finish_first(tmp_path, algo, mode):
    """Synchronous members reach the budget together, and PBT's P_1 is its population."""
    speed = Raced(lambda w: 1.0 + w % 3), Raced(lambda w: 1.0 + w % 3)
    run(config(algo, mode=mode, end="all"), tmp_path / "all", executor=speed[0])
    run(config(algo, mode=mode, end="p1"), tmp_path / "p1", executor=speed[1])
    assert lines(tmp_path / "all") == lines(tmp_path / "p1")


def test_simulated_timing_and_compute_stop_at_the_end(tmp_path):
    """timing.json records the virtual clock; work cut off by the end is not counted."""
    cfg = config("fire", mode="async", seed=3, executor="simulated", end="p1",
                 simulated={"stragglers": 0.3, "straggler_slowdown": 4.0})  # fmt: skip
    ex = SimulatedExecutor(cfg.simulated)
    run(cfg, tmp_path / "r", executor=ex)
    timing = json.loads((tmp_path / "r" / "timing.json").read_text())
    assert timing["virtual_seconds"] == ex.clock
    assert timing["virtual_compute"] == ex.compute
    # no worker is counted past the end of the run
    assert ex.compute <= ex.clock * len(ex.speeds) + 1e-6
    assert all(t <= ex.clock + 1e-9 for t in ex.free_at)
