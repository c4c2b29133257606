"""The run's best network under ``best = "highest"`` (the paper) and ``best = "final"``
(SPEC "The best network"; runner/best.py): the result, the journal's readers and the
config agree."""

import json

import pytest

from firepbt.api import run
from firepbt.config import Config
from firepbt.core.errors import ConfigError
from firepbt.report.live import PopulationView
from firepbt.report.plot_data import best_result, best_schedule
from firepbt.report.tally import RunTally
from firepbt.runner.callbacks import RunInfo
from firepbt.runner.events import WorkerRole, parse_event
from firepbt.runner.journal import read_events

BASE = {
    "trainable": "toys:Climb",
    "args": {"noise": 0.3},  # Q is noisy: the highest reading is luck (a winner's curse)
    "direction": "max",
    "seed": 3,
    "steps": 400,
    "eval_interval": 10,
    "ready_interval": 50,
    "replay": False,
    "space": {"lr": {"kind": "log_uniform", "low": 0.001, "high": 1.0}},
}
FIRE = {"name": "fire", "subpopulations": 2, "subpopulation_size": 4, "evaluators": 3,
        "max_eval_steps": 100}  # fmt: skip
PBT = {"name": "pbt", "population": 8}


def readings(path):
    """(score, worker, step, role, subpop) of every finite result in the journal."""
    events = list(read_events(path))
    roles = events[0]["roles"]
    return [
        (ev["score"], ev["worker"], ev["step"], *roles[ev["worker"]])
        for ev in events
        if ev["ev"] == "result" and ev["score"] is not None
    ]


def agrees_with_journal(result, path):
    best = best_result(path)
    assert (best["worker"], best["step"], best["score"]) == (
        result["best"]["member"],
        result["best"]["step"],
        result["best"]["score"],
    )
    assert best_schedule(path) == result["best"]["schedule"]
    shown_follows_the_rule(result, path)


def shown_follows_the_rule(result, path):
    """The live view's "best" and the trackers' ``best_Q`` (W&B, MLflow) follow the
    run's rule as the progress lines do: under "final", P_1's highest reading until a
    member reaches the budget, then the best final network, the one result.json names
    (before, both showed the highest reading of any worker whatever the rule)."""
    events = list(read_events(path))
    start = events[0]
    roles = start["roles"]
    rule = start["config"].get("best", "highest")  # no key: written before the setting
    view, tally = PopulationView(), RunTally()
    if "best" in start["config"]:  # a Config needs the key's era; the view does not
        config = Config.from_dict(start["config"])
        tally.begin(RunInfo(path, config, tuple(WorkerRole(r, s) for r, s in roles)))
    sign = 1 if start["config"]["direction"] == "max" else -1
    p1_high, reached = None, False  # P_1's highest reading so far; a member at the budget
    for ev in events:
        view.update(ev)
        if ev["ev"] != "result":
            continue
        tally.track(parse_event(ev))
        reached = reached or ev["step"] >= start["config"]["steps"]
        if ev["score"] is not None and tuple(roles[ev["worker"]]) == ("member", 1):
            if p1_high is None or sign * ev["score"] > sign * p1_high:
                p1_high = ev["score"]
        if rule == "final" and not reached:
            assert (view.best and view.best[0]) == p1_high == tally.best
    assert view.best[:2] == (result["best"]["score"], result["best"]["member"])
    if "best" in start["config"]:
        assert tally.best == result["best"]["score"]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("algo", [FIRE, PBT], ids=["fire", "pbt"])
def test_final_picks_the_best_final_network_of_p1(tmp_path, algo, mode):
    paper = {**BASE, "algorithm": algo, "best": "highest", "mode": mode}
    high = run(Config.from_dict(paper), tmp_path / "high")
    final = run(Config.from_dict({**BASE, "algorithm": algo, "mode": mode}), tmp_path / "fin")
    # the decisions are the same: only the pick differs
    ev_high = [e for e in read_events(tmp_path / "high") if e["ev"] != "start"]
    ev_fin = [e for e in read_events(tmp_path / "fin") if e["ev"] != "start"]
    strip = [{k: v for k, v in e.items() if k != "test"} for e in ev_high]
    assert strip == [{k: v for k, v in e.items() if k != "test"} for e in ev_fin]

    rows = readings(tmp_path / "fin")
    top = max(r[0] for r in rows)
    last = max(r[0] for r in rows if r[2] >= 400 and r[3:] == ("member", 1))
    assert high["best"]["score"] == top
    assert final["best"]["score"] == last and final["best"]["step"] == 400
    assert final["best"]["role"] == "member" and final["best"]["subpopulation"] == 1
    assert last < top  # on this seed the two rules pick different networks
    assert final["best_rule"] == "final" and high["best_rule"] == "highest"
    for result, path in ((high, tmp_path / "high"), (final, tmp_path / "fin")):
        agrees_with_journal(result, path)
    assert final["best"]["schedule"][-1]["end"] == 400
    # the best of P_1 alone is the paper's "current best effort" under both rules
    assert final["best_p1"] == high["best_p1"]


def test_final_falls_back_to_p1s_highest_when_p1_ends_diverged(tmp_path):
    cfg = {**BASE, "trainable": "toys:EndsNaN", "algorithm": FIRE, "best": "final"}
    result = run(Config.from_dict(cfg), tmp_path)
    rows = readings(tmp_path)
    assert not [r for r in rows if r[2] >= 400]  # every network diverged at the end
    assert result["best"]["fallback"] == "no member of P_1 ended with a finite Q"
    assert result["best"]["score"] == max(r[0] for r in rows if r[3:] == ("member", 1))
    assert result["best"]["score"] == result["best_p1"]["score"]
    agrees_with_journal(result, tmp_path)


def test_the_rule_is_journalled_and_a_journal_without_it_reads_as_the_papers(tmp_path):
    """The default is "final"; the config always holds the rule, and a journal written
    before the setting existed (no key) used the paper's rule, so its readers use it."""
    final = Config.from_dict({**BASE, "algorithm": PBT})
    paper = Config.from_dict({**BASE, "algorithm": PBT, "best": "highest"})
    assert final.best == "final" and final.to_dict()["best"] == "final"
    for cfg in (final, paper):
        assert Config.from_dict(cfg.to_dict()) == cfg  # round trip
    result = run(paper, tmp_path / "paper")
    lines = (tmp_path / "paper" / "events.jsonl").read_text().splitlines()
    start = json.loads(lines[0])
    assert start["config"]["best"] == "highest"
    del start["config"]["best"]  # as written before the setting existed
    old = tmp_path / "old"
    old.mkdir()
    (old / "events.jsonl").write_text("\n".join([json.dumps(start), *lines[1:]]) + "\n")
    agrees_with_journal(result, old)


def test_an_unknown_rule_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match=r"^best: must be one of"):
        Config.from_dict({**BASE, "algorithm": PBT, "best": "last"})
