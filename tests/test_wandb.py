"""Weights & Biases logging, for real, offline: the runs' transaction logs (``.wandb``
files) are read back with W&B's own reader (``wandb leet inspect --json``) and compared
with the journal. No network, no mocks."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_resume import Crash, crash_at
from test_runner import config

from firepbt.api import resume, run
from firepbt.runner.journal import read_events

wandb = pytest.importorskip("wandb")


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """Offline, every W&B file under tmp_path, no console capture; the wandb-core
    service this process started is stopped after each test."""
    home = tmp_path / "wandb-home"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    for var in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(home))
    monkeypatch.delenv("WANDB_DIR", raising=False)  # the logger's default: DIR/wandb
    yield
    wandb.teardown()
    assert not service_children(), "a wandb-core process outlived the test"


def service_children():
    """wandb-core processes whose parent is this process."""
    me, found = str(os.getpid()), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        ppid = text[text.rindex(")") + 2 :].split()[1]
        if ppid == me and "wandb" in name:
            found.append(name)
    return found


def inspect(run_file: Path) -> list[dict]:
    """The records of one ``.wandb`` file, as ``wandb leet inspect --json FILE`` prints
    them (the same wandb-core command, called directly to skip the CLI's start-up)."""
    from wandb.cli import leet

    cfg = leet._resolve_path(str(run_file))
    args = leet._base_args("inspect") + ["--json", *leet._get_local_launch_args(cfg)]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def read_runs(out: Path) -> dict[str, list[list[dict]]]:
    """run id -> the records of each offline run directory with that id, oldest first."""
    runs: dict[str, list[list[dict]]] = {}
    for d in sorted((out / "wandb").glob("offline-run-*")):
        (f,) = d.glob("run-*.wandb")
        runs.setdefault(f.stem.removeprefix("run-"), []).append(inspect(f))
    return runs


def of(records, kind):
    return [r[kind] for r in records if r["type"] == kind]


def history(parts):
    """History rows of all the parts of one run (the keys logged, without W&B's own)."""
    rows = []
    for records in parts:
        for h in of(records, "history"):
            rows.append({k: v for k, v in h["item"].items() if not k.startswith("_")})
    return rows


def expected_rows(events):
    """worker -> its history rows, rebuilt from the journal."""
    trained, rows = {}, {}
    for ev in events:
        if ev["ev"] == "result":
            w = ev["worker"]
            trained[w] = trained.get(w, 0) + ev["step"] - ev["start"]
            row = {"trained_steps": trained[w], "net_step": ev["step"], **ev["hparams"]}
            row.update({"Q": ev["score"]} if ev["score"] is not None else {"diverged": 1})
            rows.setdefault(w, []).append(row)
        elif ev["ev"] == "copy":
            dst = ev["dst"]
            row = {"trained_steps": trained.get(dst, 0), "copied_from": ev["src"], ev["reason"]: 1}
            rows.setdefault(dst, []).append(row)
    return rows


def test_one_run_per_worker_grouped_with_q_hparams_copies_and_artifacts(tmp_path):
    out = tmp_path / "exp-7"
    result = run(config("fire", log={"wandb": {"project": "proj", "tags": ["t1"]}}), out)
    events = list(read_events(out))
    ids = json.loads((out / "wandb.json").read_text())
    assert ids["group"] == "exp-7" and ids["project"] == "proj"
    runs = read_runs(out)
    assert set(runs) == {ids["controller"], *ids["workers"]}
    roles = events[0]["roles"]
    want = expected_rows(events)
    for w, run_id in enumerate(ids["workers"]):
        (records,) = runs[run_id]
        (meta,) = of(records, "run")
        role, subpop = roles[w]
        assert meta["run_group"] == "exp-7" and meta["project"] == "proj"
        assert meta["job_type"] == role
        assert set(meta["tags"]) == {"t1", f"P{subpop}" if role == "member" else "evaluator"}
        conf = meta["config"]["update"]
        assert conf["worker"] == w and conf["role"] == role and conf["algorithm"] == "fire"
        assert conf["subpopulation"] == (subpop or None)
        got = history([records])
        assert got == want.get(w, []), w
        (exit_,) = of(records, "exit")
        assert exit_.get("exit_code", 0) == 0
    copies = [ev for ev in events if ev["ev"] == "copy"]
    assert any(c["reason"] == "exploit" for c in copies)
    assert any(c["reason"] == "success" for c in copies)

    (controller,) = runs[ids["controller"]]
    (meta,) = of(controller, "run")
    assert meta["job_type"] == "controller" and meta["display_name"] == "exp-7"
    assert meta["config"]["update"]["algorithm"]["name"] == "fire"
    rows = history([controller])
    counted = [r for r in rows if "exploits" in r]
    assert counted[-1]["exploits"] == result["counts"]["exploit"]
    assert counted[-1]["evaluator_successes"] == result["counts"]["success"]
    assert max(r["best_Q"] for r in counted) == pytest.approx(result["best"]["score"])
    tables = {k.split(".")[0] for r in rows for k in r if k.endswith("_type")}
    assert tables == {"weight_copies", "results", "best_schedule"}
    (artifact,) = [a for a in of(controller, "artifact") if a["type"] == "firepbt-result"]
    assert artifact["name"] == "exp-7-result"
    files = {c["path"]: c for c in artifact["manifest"]["contents"]}
    assert set(files) == {"result.json", "best_schedule.json", "results.txt"}
    staged = json.loads(Path(files["best_schedule.json"]["local_path"]).read_text())
    assert staged == result["best"]["schedule"]
    summary = {}
    for s in of(controller, "summary"):
        summary.update(s["update"])
    assert summary["best_score"] == pytest.approx(result["best"]["score"])


def test_resume_continues_the_same_runs(tmp_path):
    out = tmp_path / "run"
    cfg = config("pbt", log={"wandb": True})
    with pytest.raises(Crash):
        run(cfg, out, observers=[crash_at(150)])
    ids = (out / "wandb.json").read_text()
    first = read_runs(out)
    resume(out)
    assert (out / "wandb.json").read_text() == ids  # the same runs
    runs = read_runs(out)
    ids = json.loads(ids)
    assert set(runs) == set(first) == {ids["controller"], *ids["workers"]}
    events = list(read_events(out))
    want = expected_rows(events)
    for w, run_id in enumerate(ids["workers"]):
        parts = runs[run_id]
        assert len(parts) == 2  # the first process's offline run, and the resumed one
        assert [of(p, "exit")[0].get("exit_code", 0) for p in parts] == [1, 0]
        # what the resumed run logged, after what the first one logged up to the
        # checkpoint, is the journal's story of this worker (deterministic: the rows
        # regenerated after the checkpoint are the ones already logged)
        got = history(parts)
        dedup = []
        for row in got:
            if row not in dedup:
                dedup.append(row)
        assert dedup == want[w], w
