"""The live progress view: the population model, plain lines and the rich panel."""

import io

import pytest
from test_runner import config

from firepbt.api import run
from firepbt.report.live import PlainProgress, PopulationView, RichProgress, progress_observer
from firepbt.runner.journal import read_events


def test_view_follows_a_fire_run_from_its_events(tmp_path):
    result = run(config("fire"), tmp_path)
    view = PopulationView()
    events = list(read_events(tmp_path))
    for ev in events:
        view.update(ev)
    assert view.ended and view.done() == 400 and view.subpopulations() == [1, 2]
    # the run's best by its rule (here "final", the default; tests/test_best_rule.py)
    assert view.best is not None and view.best[0] == result["best"]["score"]
    copies = [ev for ev in events if ev["ev"] == "copy"]
    assert view.counts["exploit"] == sum(c["reason"] == "exploit" for c in copies)
    assert view.counts["success"] == sum(c["reason"] == "success" for c in copies)
    # P1's hyperparameter range spans exactly its members' latest hyperparameters
    latest = {}
    for ev in events:
        if ev["ev"] in ("result", "hparams"):
            latest[ev["worker"]] = ev["hparams"]["lr"]
    lrs = [latest[w] for w in view.members(1)]
    lo, hi = view.hparam_ranges(1)["lr"].split("–")
    assert float(lo) == pytest.approx(min(lrs), rel=1e-3)
    assert float(hi) == pytest.approx(max(lrs), rel=1e-3)
    assert "step 400/400 (0 left)" in view.line() and "P2:" in view.line()


def test_view_shows_evaluator_checks_and_recent_events():
    view = PopulationView(recent=2)
    view.update(
        {
            "ev": "start",
            "roles": [["member", 1]] * 4 + [["member", 2]] * 4 + [["evaluator", 0]],
            "config": {"steps": 100, "ready_interval": 10, "algorithm": {"name": "fire"}},
        }
    )
    view.update({"ev": "assign", "evaluator": 8, "parent": 5, "target": 1})
    for step in (30, 40):
        view.update(
            {
                "ev": "result",
                "worker": 8,
                "start": step - 10,
                "step": step,
                "hparams": {"lr": 0.1},
                "score": 0.5,
            }
        )
    view.update(
        {
            "ev": "check",
            "evaluator": 8,
            "parent": 5,
            "target": 1,
            "trained": 40,
            "p": 0.03,
            "threshold": 0.5,
            "diff": 0.2,
            "outcome": "continue",
        }
    )
    assert view.evaluators[8]["p"] == 0.03 and view.best_fitness(2) == "diff 0.2"
    assert view.evaluators[8]["trained"] == 20
    for dst in (0, 1, 2):
        view.update({"ev": "copy", "src": 3, "dst": dst, "step": 10, "reason": "exploit"})
    assert list(view.recent) == ["step 10: exploit P1/3 -> P1/1", "step 10: exploit P1/3 -> P1/2"]
    view.update({"ev": "free", "evaluator": 8, "reason": "stop"})
    assert not view.evaluators and view.counts["stop"] == 1
    # a check journalled after its evaluator was freed and re-assigned is the old one's
    view.update({"ev": "assign", "evaluator": 8, "parent": 6, "target": 2})
    view.update({"ev": "check", "evaluator": 8, "p": 0.001, "diff": 1.0, "outcome": "success"})
    assert view.evaluators[8]["p"] is None and view.evaluators[8]["parent"] == 6


def test_plain_lines_one_per_ready_interval(tmp_path):
    out = io.StringIO()
    run(config("pbt"), tmp_path, callbacks=[PlainProgress(out, min_interval=0)])
    lines = out.getvalue().splitlines()
    # 400 steps, ready every 50: 8 lines, the last one doubles as the end line
    assert len(lines) == 8
    assert "step 50/400" in lines[0] and "step 400/400 (0 left)" in lines[-1]
    # plain PBT has one population, not FIRE's P1
    assert all("best" in line and "population:" in line and "P1" not in line for line in lines)


def test_plain_lines_are_throttled(tmp_path):
    out = io.StringIO()
    run(config("pbt"), tmp_path, callbacks=[PlainProgress(out, min_interval=3600)])
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # the first ready point and the end


def test_rich_panel_renders_evaluators(tmp_path):
    Console = pytest.importorskip("rich.console").Console

    buf = io.StringIO()
    view = RichProgress(Console(file=buf, force_terminal=True, width=140), min_interval=0.05)
    run(config("fire"), tmp_path, callbacks=[view])
    text = buf.getvalue()
    assert "step 400/400" in text and "sub-population" in text
    assert "evaluator" in text and "threshold" in text
    assert not view.started


def test_observer_choice():
    pytest.importorskip("rich")
    assert progress_observer(quiet=True) is None
    assert isinstance(progress_observer(stream=io.StringIO()), PlainProgress)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(progress_observer(stream=Tty()), RichProgress)


def test_plain_lines_when_rich_is_missing(monkeypatch):
    import sys

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setitem(sys.modules, "rich.console", None)
    assert isinstance(progress_observer(stream=Tty()), PlainProgress)


def test_done_is_the_slowest_members_step_after_any_sequence_of_steps():
    """done() is kept incrementally (O(1) per event at 1000 workers); it must equal the
    minimum over members after every event, steps that go back (copies) included."""
    import random

    rng = random.Random(0)
    roles = [["member", 1]] * 5 + [["member", 2]] * 5 + [["evaluator", 0]] * 3
    view = PopulationView()
    view.update({"ev": "start", "roles": roles, "config": {"steps": 100}})
    assert view.done() == 0 and view.members(2) == list(range(5, 10))
    for _ in range(2000):
        w, step = rng.randrange(len(roles)), rng.randrange(0, 100, 10)
        if rng.random() < 0.3:
            view.update(
                {
                    "ev": "copy",
                    "src": rng.randrange(10),
                    "dst": w,
                    "step": step,
                    "reason": "exploit",
                }
            )
        else:
            view.update(
                {
                    "ev": "result",
                    "worker": w,
                    "start": step,
                    "step": step,
                    "hparams": {},
                    "score": 0.0,
                }
            )
        assert view.done() == min(view.step.get(m, 0) for m in range(10))
