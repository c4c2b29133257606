"""MLflow logging, for real: a local SQLite tracking store, read back through
``MlflowClient`` and compared with the journal. No server, no mocks."""

import json
import logging
import shutil

import pytest
from test_resume import Crash, crash_at
from test_runner import config

from firepbt.api import resume, run
from firepbt.runner.journal import read_events

pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """An empty MLflow database, created once (creating its tables takes seconds)."""
    path = tmp_path_factory.mktemp("mlflow") / "template.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, template, monkeypatch):
    """A fresh database; MLflow's artifacts (``./mlruns`` by default) go under tmp_path."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mlflow.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


def expected_metrics(events):
    """(worker, key) -> [(step, value)] rebuilt from the journal, step = trained steps."""
    trained, out = {}, {}
    for ev in events:
        if ev["ev"] == "result":
            w = ev["worker"]
            trained[w] = trained.get(w, 0) + ev["step"] - ev["start"]
            values = {"net_step": ev["step"], **ev["hparams"]}
            values.update({"Q": ev["score"]} if ev["score"] is not None else {"diverged": 1})
            for k, v in values.items():
                out.setdefault((w, k), []).append((trained[w], v))
        elif ev["ev"] == "copy":
            dst = ev["dst"]
            step = trained.get(dst, 0)
            out.setdefault((dst, "copied_from"), []).append((step, ev["src"]))
            out.setdefault((dst, ev["reason"]), []).append((step, 1))
    return out


def history(client, run_id, key):
    got = [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
    return sorted(set(got), key=got.index)  # a resumed run logs its regenerated points again


def check_against_journal(client, ids, events):
    want = expected_metrics(events)
    for w, run_id in enumerate(ids["workers"]):
        data = client.get_run(run_id).data
        keys = {k for (worker, k) in want if worker == w}
        assert set(data.metrics) == keys, w
        for k in keys:
            assert history(client, run_id, k) == want[(w, k)], (w, k)


def test_a_parent_run_with_one_nested_run_per_worker(tmp_path, store):
    out = tmp_path / "exp-3"
    cfg = config("fire", log={"mlflow": {"tracking_uri": store, "experiment": "pbt"}})
    result = run(cfg, out)
    events = list(read_events(out))
    ids = json.loads((out / "mlflow.json").read_text())
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("pbt")
    assert exp is not None and ids["experiment_id"] == exp.experiment_id
    runs = client.search_runs([exp.experiment_id], max_results=100)
    assert {r.info.run_id for r in runs} == {ids["parent"], *ids["workers"]}
    roles = events[0]["roles"]
    for w, run_id in enumerate(ids["workers"]):
        r = client.get_run(run_id)
        role, subpop = roles[w]
        assert r.info.status == "FINISHED"
        assert r.data.tags["mlflow.parentRunId"] == ids["parent"]
        assert r.data.tags["firepbt.role"] == role
        assert r.data.params == {"worker": str(w), "role": role, "subpopulation": str(subpop or "")}
        name = f"P{subpop}/member_{w}" if role == "member" else f"evaluator_{w}"
        assert r.info.run_name == f"exp-3/{name}"
    check_against_journal(client, ids, events)
    parent = client.get_run(ids["parent"])
    assert parent.info.status == "FINISHED" and parent.info.run_name == "exp-3"
    assert parent.data.params["algorithm.name"] == "fire"
    assert parent.data.params["steps"] == "400"
    m = parent.data.metrics
    assert m["exploits"] == result["counts"]["exploit"]
    assert m["evaluator_successes"] == result["counts"]["success"]
    assert m["best_Q"] == m["best_score"] == result["best"]["score"]
    arts = {a.path for a in client.list_artifacts(ids["parent"])}
    assert arts == {
        "result.json",
        "best_schedule.json",
        "results.txt",
        "results_table.json",
        "weight_copies.json",
    }
    local = client.download_artifacts(ids["parent"], "best_schedule.json", str(tmp_path))
    assert json.loads(open(local).read()) == result["best"]["schedule"]
    table = json.loads(
        open(client.download_artifacts(ids["parent"], "weight_copies.json", str(tmp_path))).read()
    )
    copies = [ev for ev in events if ev["ev"] == "copy"]
    assert len(table["data"]) == len(copies)
    text = open(client.download_artifacts(ids["parent"], "results.txt", str(tmp_path))).read()
    assert "best Q" in text and "exp-3" in text


def test_resume_continues_the_same_runs(tmp_path, store):
    out = tmp_path / "run"
    cfg = config("pbt", log={"mlflow": {"tracking_uri": store}})
    with pytest.raises(Crash):
        run(cfg, out, observers=[crash_at(150)])
    client = MlflowClient(store)
    ids = json.loads((out / "mlflow.json").read_text())
    assert client.get_run(ids["parent"]).info.status == "FAILED"
    resume(out)
    assert json.loads((out / "mlflow.json").read_text()) == ids
    exp = client.get_experiment_by_name("firepbt")
    assert len(client.search_runs([exp.experiment_id], max_results=100)) == 1 + len(ids["workers"])
    for run_id in [ids["parent"], *ids["workers"]]:
        assert client.get_run(run_id).info.status == "FINISHED"
    check_against_journal(client, ids, list(read_events(out)))


def test_a_store_that_fails_mid_run_is_reported_once_and_the_run_goes_on(tmp_path, store, caplog):
    """The database is overwritten (as a broken disk would) after the first checkpoint:
    the logger fails, is reported once, and the journal and result are those of a run
    without logging."""
    ref = tmp_path / "ref"
    run(config("fire"), ref)
    db = store.removeprefix("sqlite:///")
    seen = []

    def break_store(ev):
        seen.append(ev)
        if len(seen) == 100:
            with open(db, "r+b") as fh:
                size = fh.seek(0, 2)
                fh.seek(0)
                fh.write(b"\0" * size)

    out = tmp_path / "run"
    cfg = config("fire", log={"mlflow": {"tracking_uri": store}})
    with caplog.at_level(logging.WARNING, logger="firepbt"):
        result = run(cfg, out, observers=[break_store])
    warnings = [r.getMessage() for r in caplog.records if r.name == "firepbt"]
    assert len(warnings) == 1 and "callback MlflowLogger failed" in warnings[0], warnings
    # the journal is whole: the clean run's, but for the config in its first line
    journal, clean = list(read_events(out)), list(read_events(ref))
    assert journal[1:] == clean[1:] and journal[-1]["ev"] == "end"
    assert journal[0]["config"]["log"]["mlflow"] == {"tracking_uri": store, "experiment": "firepbt"}
    want = json.loads((ref / "result.json").read_text())
    assert {k: v for k, v in result.items() if k != "config"} == {
        k: v for k, v in want.items() if k != "config"
    }
    assert result["best"]["score"] > 0
