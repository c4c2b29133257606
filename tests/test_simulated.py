"""The simulated executor (issue 12): virtual time, heterogeneous workers, failures.

Its sync-mode conformance with the in-process executor is in tests/test_executors.py.
"""

from __future__ import annotations

import math

import pytest
from test_executors import BASE, check_accounting, config

from firepbt.api import run
from firepbt.config import Config, SimulatedSettings
from firepbt.core.errors import ConfigError
from firepbt.core.trainable import TrainableSpec
from firepbt.executors import Task, make_executor
from firepbt.executors.simulated import SimulatedExecutor
from firepbt.runner.journal import read_events


def test_tasks_finish_in_virtual_time_order_and_the_clock_follows():
    ex = SimulatedExecutor(SimulatedSettings(speed_sigma=0.0, stragglers=0.5))
    ex.start(TrainableSpec("toys:Climb", {}), [1, 2, 3, 4])
    slow = {w for w in range(4) if ex.speeds[w] < 1}
    assert len(slow) == 2 and all(ex.speeds[w] == pytest.approx(1 / 3) for w in slow)
    for w in range(4):
        ex.submit(Task(w, 0, 10, {"lr": 0.1}))
    first = ex.wait(every=False)
    assert len(first) == 1 and first[0].worker not in slow and ex.clock == 10.0
    rest = ex.wait(every=True)
    assert {r.worker for r in rest} == set(range(4)) - {first[0].worker}
    assert ex.clock == pytest.approx(30.0)  # the stragglers: 10 steps at speed 1/3
    assert ex.compute == pytest.approx(10 + 10 + 30 + 30)


def test_a_cancelled_task_gives_back_its_unspent_time():
    ex = SimulatedExecutor(SimulatedSettings(speed_sigma=0.0, stragglers=0.0))
    ex.start(TrainableSpec("toys:Climb", {}), [1, 2])
    ex.submit(Task(0, 0, 10, {"lr": 0.1}))
    ex.submit(Task(1, 0, 40, {"lr": 0.1}))
    assert [r.worker for r in ex.wait(every=False)] == [0]
    ex.cancel(1)  # at t = 10 of its 40
    assert ex.wait(every=True) == []
    assert ex.compute == pytest.approx(10 + 10)


def test_same_seed_same_run_other_seed_other_speeds(tmp_path):
    cfg = config("fire", mode="async", executor="simulated")
    a = run(cfg, tmp_path / "a")
    b = run(cfg, tmp_path / "b")
    assert (tmp_path / "a/events.jsonl").read_bytes() == (tmp_path / "b/events.jsonl").read_bytes()
    assert a == b
    c = make_executor(cfg.with_seed(4))
    d = make_executor(cfg)
    spec = TrainableSpec("toys:Climb", {})
    c.start(spec, [5, 6, 7])
    d.start(spec, [1, 2, 3])
    assert list(c.speeds) != list(d.speeds)


def test_async_with_heterogeneous_speeds_fast_workers_train_more_often(tmp_path):
    """Round-robin (in-process) async interleaves workers evenly; the simulator does not:
    while the slowest member reaches the budget, fast evaluators run many more tasks."""
    cfg = config(
        "fire",
        mode="async",
        executor="simulated",
        simulated={"speed_sigma": 0.5, "stragglers": 0.25, "straggler_slowdown": 3.0},
    )
    run(cfg, tmp_path / "a")
    check_accounting(tmp_path / "a", 300)
    events = list(read_events(tmp_path / "a"))
    start = events[0]
    ex = make_executor(cfg)
    ex.start(TrainableSpec("toys:Climb", {}), start["seeds"])
    members = [w for w, (role, _) in enumerate(start["roles"]) if role == "member"]
    first_done = {}
    for i, e in enumerate(events):
        if e["ev"] == "result" and e["step"] == 300 and e["worker"] in members:
            first_done.setdefault(e["worker"], i)
    fastest = max(members, key=lambda w: ex.speeds[w])
    slowest = min(members, key=lambda w: ex.speeds[w])
    assert ex.speeds[fastest] > 2 * ex.speeds[slowest]
    assert first_done[fastest] < first_done[slowest]


def test_failures_are_retried_reported_and_change_no_step(tmp_path):
    cfg = config("pbt", executor="simulated", simulated={"failure_rate": 0.3}, max_retries=5)
    run(cfg, tmp_path / "a")
    check_accounting(tmp_path / "a", 300)
    faults = [e for e in read_events(tmp_path / "a") if e["ev"] == "fault"]
    assert faults and all(f["reason"] == "simulated failure" for f in faults)
    assert {f["action"] for f in faults} <= {"retry", "failed"}


def test_a_task_that_fails_every_retry_is_a_diverged_network():
    ex = SimulatedExecutor(SimulatedSettings(failure_rate=0.999), max_retries=1)
    ex.start(TrainableSpec("toys:Climb", {}), [1])
    ex.submit(Task(0, 0, 10, {"lr": 0.1}))
    (r,) = ex.wait(every=True)
    assert math.isnan(r.score) and "gave up" in (r.error or "")
    assert [f["action"] for f in r.faults] == ["retry", "failed"]


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"step_seconds": -1.0}, "simulated.step_seconds"),
        ({"step_seconds": 0}, "simulated.step_seconds"),
        ({"speed_sigma": -0.1}, "simulated.speed_sigma"),
        ({"stragglers": 1.5}, "simulated.stragglers"),
        ({"straggler_slowdown": 0.5}, "simulated.straggler_slowdown"),
        ({"failure_rate": -0.1}, "simulated.failure_rate"),
        ({"failure_rate": 1.2}, "simulated.failure_rate"),
        ({"failure_rate": 1.0}, "simulated.failure_rate"),
        ({"speed": 2.0}, "simulated.speed"),
    ],
)
def test_impossible_simulated_settings_name_the_field(table, field):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        Config.from_dict(
            dict(BASE, algorithm={"name": "pbt"}, executor="simulated", simulated=table)
        )


def test_a_simulated_table_without_the_simulated_executor_is_refused():
    with pytest.raises(ConfigError, match="^simulated: "):
        Config.from_dict(dict(BASE, algorithm={"name": "pbt"}, simulated={"failure_rate": 0.1}))


def test_the_cli_refuses_a_bad_simulated_setting_with_exit_2(tmp_path, capsys):
    from firepbt.cli import main

    toml = tmp_path / "c.toml"
    toml.write_text(
        'trainable = "toys:Climb"\nsteps = 100\neval_interval = 10\nready_interval = 50\n'
        'executor = "simulated"\n[space.lr]\nkind = "log_uniform"\nlow = 0.001\nhigh = 1.0\n'
        '[algorithm]\nname = "pbt"\npopulation = 4\n[simulated]\nfailure_rate = 1.5\n'
    )
    assert main(["run", str(toml), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "simulated.failure_rate" in err[0]
    assert not (tmp_path / "out").exists()


def test_fire_with_gp_refit_is_deterministic_and_refits_less(tmp_path):
    from firepbt.core import curves

    cfg = config("fire", mode="async", executor="simulated")
    cfg = Config.from_dict(
        {
            **cfg.to_dict(),
            "algorithm": {**cfg.to_dict()["algorithm"], "smooth": True, "gp_refit": 0.5},
        }
    )
    assert cfg.algorithm.gp_refit == 0.5
    before = dict(curves.STATS)
    run(cfg, tmp_path / "a")
    fits, conditioned = (curves.STATS[k] - before[k] for k in ("fits", "conditioned"))
    run(cfg, tmp_path / "b")
    assert (tmp_path / "a/events.jsonl").read_bytes() == (tmp_path / "b/events.jsonl").read_bytes()
    assert conditioned > 0 and fits > 0
