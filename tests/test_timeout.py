"""task_timeout (issue 9): the process executor kills an overrunning task with its worker,
journals a ``timeout`` fault and retries it; the in-process executor can only report it."""

import threading

import pytest
import toys

from firepbt.api import run
from firepbt.config import Config
from firepbt.executors import make_executor
from firepbt.executors.inprocess import InProcessExecutor
from firepbt.runner.journal import read_events

BASE = {
    "trainable": "toys:Hangs",
    "steps": 40,
    "eval_interval": 10,
    "ready_interval": 20,
    "space": {"lr": {"kind": "log_uniform", "low": 0.05, "high": 0.5}},
    "algorithm": {"name": "pbt", "population": 4},
}


@pytest.mark.parametrize("kind", ["processes", pytest.param("ray", marks=pytest.mark.ray)])
def test_overrunning_task_is_killed_retried_then_the_network_fails(tmp_path, kind, ray_session):
    cfg = Config.from_dict(
        {**BASE, "executor": kind, "slots": 2, "max_retries": 1, "task_timeout": 1.0}
    )
    result = run(cfg, tmp_path, notices=False)
    faults = [e for e in read_events(tmp_path) if e["ev"] == "fault"]
    assert faults and all(f["reason"] == "timeout" and f["timeout_s"] == 1.0 for f in faults)
    by_task = {}
    for f in faults:
        by_task.setdefault((f["worker"], f["token"]), []).append(f["action"])
    # every hung task: retried once (max_retries = 1), then given up (or dropped as stale)
    assert all(actions[0] == "retry" for actions in by_task.values())
    assert any(actions == ["retry", "failed"] for actions in by_task.values())
    failed = [
        e
        for e in read_events(tmp_path)
        if e["ev"] == "result" and "task_timeout" in (e.get("error") or "")
    ]
    assert failed and result["best"] is not None  # the hangs diverged; the run finished
    assert result["counts"]["diverged"] >= len(failed)


KINDS = ["processes", pytest.param("ray", marks=pytest.mark.ray)]


def _faults(run_dir):
    return [e for e in read_events(run_dir) if e["ev"] == "fault"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_hung_test_is_killed_journalled_and_retried(tmp_path, kind, ray_session):
    """A test() that hangs (on the best network, at the end of the run, or in
    ``firepbt replay``) used to hang the run for ever: it may take task_timeout."""
    flag = tmp_path / "hung-once"
    cfg = Config.from_dict(
        {
            **BASE,
            "trainable": "toys:HangsOnce",
            "args": {"where": "test", "flag": str(flag)},
            "executor": kind,
            "slots": 2,
            "max_retries": 1,
            "task_timeout": 3.0,  # a test here takes microseconds, even on a loaded machine
            "replay": False,
        }
    )
    result = run(cfg, tmp_path / "run", notices=False)
    assert flag.exists()  # the first test hung
    (fault,) = _faults(tmp_path / "run")  # journalled once
    assert fault["during"] == "test" and fault["reason"] == "timeout"
    assert fault["timeout_s"] == 3.0 and (fault["attempt"], fault["action"]) == (1, "retry")
    assert result["best"]["test"] is not None  # the retry, on a restarted worker, answered
    from firepbt.report.notices import fault_text

    assert fault_text(fault) == (
        f"worker {fault['worker']}'s test ran over its time limit (3 s); killed its worker "
        f"on slot {fault['slot']}; retrying (retry 1)"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_hung_replay_is_killed_journalled_and_retried_then_fails_loudly(
    tmp_path, kind, ray_session
):
    from firepbt.runner.setup import seeds_for

    data = {
        **BASE,
        "trainable": "toys:HangsOnce",
        "eval_interval": 20,
        "executor": kind,
        "slots": 2,
        "max_retries": 1,
        "task_timeout": 3.0,
    }
    replay_seed = seeds_for(Config.from_dict(data).seed, 4)[2]
    flag = tmp_path / "hung-once"
    args = {"where": "train", "hang_seed": replay_seed, "flag": str(flag)}
    result = run(Config.from_dict({**data, "args": args}), tmp_path / "once", notices=False)
    assert flag.exists() and result["replay"]["score"] is not None  # the retry replayed it
    (fault,) = _faults(tmp_path / "once")
    # the limit: task_timeout for each of the replay's 2 training calls (40 steps in calls
    # of eval_interval = 20) and for its evaluation
    assert (fault["during"], fault["worker"], fault["timeout_s"]) == ("replay", None, 9.0)
    assert (fault["attempt"], fault["action"]) == (1, "retry")

    # a replay that hangs every time: given up after max_retries, loudly, faults journalled
    args = {"where": "train", "hang_seed": replay_seed}
    from firepbt.core.errors import ExecutorError  # the CLI: one line, exit status 1

    with pytest.raises(ExecutorError, match=r"^replay: ran over its time limit \(9 s"):
        run(Config.from_dict({**data, "args": args}), tmp_path / "always", notices=False)
    events = read_events(tmp_path / "always")
    assert [e["ev"] for e in events].count("end") == 1  # the search itself finished
    assert [(f["during"], f["action"]) for f in _faults(tmp_path / "always")] == [
        ("replay", "retry"),
        ("replay", "failed"),
    ]


def test_in_process_timeout_is_reported_while_the_task_runs(tmp_path):
    toys.RELEASE = threading.Event()
    said = []

    def notify(message):  # called by the watchdog thread while the task still blocks
        said.append(message)
        toys.RELEASE.set()

    try:
        cfg = Config.from_dict({**BASE, "trainable": "toys:WaitsForRelease", "task_timeout": 0.2})
        assert isinstance(make_executor(cfg), InProcessExecutor)
        assert make_executor(cfg).task_timeout == 0.2
        ex = InProcessExecutor(task_timeout=0.2, notify=notify)
        run(cfg, tmp_path, executor=ex, notices=False)
    finally:
        toys.RELEASE = None
    assert said and "cannot stop it" in said[0] and 'executor = "processes"' in said[0]
    faults = [e for e in read_events(tmp_path) if e["ev"] == "fault"]
    assert faults[0]["reason"] == "timeout" and faults[0]["action"].startswith("overran")


@pytest.mark.parametrize("where", ["test", "train"])
def test_in_process_a_hung_test_or_replay_is_reported_and_journalled(tmp_path, where):
    from firepbt.report.notices import fault_text
    from firepbt.runner.setup import seeds_for

    toys.RELEASE = threading.Event()
    said = []

    def notify(message):  # the watchdog, while the test or the replay still blocks
        said.append(message)
        toys.RELEASE.set()

    data = {**BASE, "trainable": "toys:WaitsForReleaseOutsideTasks", "replay": where == "train"}
    args = {"where": where, "hang_seed": seeds_for(Config.from_dict(data).seed, 4)[2]}
    try:
        ex = InProcessExecutor(task_timeout=0.2, notify=notify)
        result = run(Config.from_dict({**data, "args": args}), tmp_path, executor=ex, notices=False)
    finally:
        toys.RELEASE = None
    what = "worker" if where == "test" else "the replay"
    assert len(said) == 1 and said[0].startswith(f"firepbt: {what}") and "cannot stop it" in said[0]
    (fault,) = _faults(tmp_path)
    assert fault["during"] == ("test" if where == "test" else "replay")
    assert fault["reason"] == "timeout" and fault["action"].startswith("overran")
    # the replay's limit: 0.2 s for each of its 4 training calls and its evaluation
    assert fault["timeout_s"] == (0.2 if where == "test" else 1.0)
    assert "over its time limit" in fault_text(fault)
    assert result["best"]["test"] is not None
    assert (result["replay"] is None) == (where == "test")


def test_task_timeout_must_be_positive():
    from firepbt.core.errors import ConfigError

    with pytest.raises(ConfigError, match="^task_timeout: must be > 0"):
        Config.from_dict({**BASE, "task_timeout": 0})
    assert "task_timeout" not in Config.from_dict(BASE).to_dict()  # off by default
