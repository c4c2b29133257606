"""One conformance suite for every executor, faults (real SIGKILLs) and bad input.

Every executor must give, in synchronous mode, the same run as the in-process one:
the same journal and result, byte for byte (the toy trainables are deterministic and
their state_dict holds everything train depends on).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from firepbt.api import run
from firepbt.config import Config
from firepbt.core.errors import ConfigError
from firepbt.core.trainable import TrainableSpec
from firepbt.executors import InProcessExecutor, ProcessExecutor, Task
from firepbt.runner.journal import read_events

BASE = {
    "trainable": "toys:Climb",
    "direction": "max",
    "seed": 3,
    "steps": 300,
    "eval_interval": 10,
    "ready_interval": 50,
    "space": {"lr": {"kind": "log_uniform", "low": 0.001, "high": 1.0}},
}
ALGOS = {
    "pbt": {"name": "pbt", "population": 6},
    "fire": {
        "name": "fire",
        "subpopulations": 2,
        "subpopulation_size": 4,
        "evaluators": 3,
        "max_eval_steps": 100,
        "smooth": False,
    },
}


def config(algo: str = "fire", **kw) -> Config:
    return Config.from_dict(dict(BASE, algorithm=ALGOS[algo], **kw))


def make(kind: str, slots: int = 2, **kw):
    if kind == "inprocess":
        return InProcessExecutor()
    if kind == "simulated":
        from firepbt.executors.simulated import SimulatedExecutor

        return SimulatedExecutor(**kw)
    if kind == "processes":
        return ProcessExecutor(slots, **kw)
    from firepbt.executors.ray import RayExecutor

    return RayExecutor(slots, **kw)


EXECUTORS = ["processes", "simulated", pytest.param("ray", marks=pytest.mark.ray)]
REMOTE = [k for k in EXECUTORS if k != "simulated"]  # trainables built outside this process


def check_accounting(out: Path, steps: int) -> dict[int, int]:
    """Per worker, results are contiguous on the network it holds; members reach ``steps``
    (asynchronously with ``end = "p1"``, the default, P_1's do and the others stop on the
    way: ``tests/test_async_end.py``)."""
    events = list(read_events(out / "events.jsonl"))
    start = next(e for e in events if e["ev"] == "start")
    at = [0] * start["workers"]
    for e in events:
        if e["ev"] == "copy":
            at[e["dst"]] = e["step"]
        elif e["ev"] == "result":
            w = e["worker"]
            assert e["start"] == at[w], f"worker {w}: a step lost or counted twice at {e}"
            at[w] = e["step"]
    cfg = start["config"]
    p1_ends = cfg["mode"] == "async" and cfg.get("end") == "p1"
    for w, (role, subpop) in enumerate(start["roles"]):
        if role == "member" and (subpop == 1 or not p1_ends):
            assert at[w] == steps, f"member {w} ended at step {at[w]}, not {steps}"
        elif role == "member":
            assert at[w] <= steps, f"member {w} trained past the budget: {at[w]}"
    return {w: s for w, s in enumerate(at)}


@pytest.mark.parametrize("kind", EXECUTORS)
@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_sync_runs_equal_the_in_process_run(tmp_path, kind, algo, ray_session):
    cfg = config(algo)
    run(cfg, tmp_path / "ref")
    run(cfg, tmp_path / "other", executor=make(kind, slots=3))
    for name in ("result.json", "events.jsonl"):
        assert (tmp_path / "ref" / name).read_bytes() == (tmp_path / "other" / name).read_bytes()


@pytest.mark.parametrize("kind", EXECUTORS)
def test_async_run_brings_every_member_to_the_budget(tmp_path, kind, ray_session):
    result = run(config("fire", mode="async"), tmp_path / "a", executor=make(kind))
    check_accounting(tmp_path / "a", 300)
    assert result["best"]["score"] > 0.9


@pytest.mark.parametrize("kind", EXECUTORS)
def test_a_trainable_that_raises_is_diverged_not_fatal(tmp_path, kind, ray_session):
    cfg = config("pbt", trainable="toys:Flaky")
    run(cfg, tmp_path / "ref")
    run(cfg, tmp_path / "other", executor=make(kind))
    assert (tmp_path / "ref/result.json").read_bytes() == (
        tmp_path / "other/result.json"
    ).read_bytes()


def test_executor_config_key_selects_the_process_executor(tmp_path):
    a = run(config("pbt"), tmp_path / "a")
    b = run(config("pbt", executor="processes", slots=2), tmp_path / "b")
    assert a["best"] == b["best"] and a["counts"] == b["counts"]
    assert b["config"]["executor"] == "processes"


def test_copy_moves_the_state_of_the_last_finished_task():
    ex = ProcessExecutor(2)
    ex.start(TrainableSpec("toys:Climb"), [1, 2, 3])
    try:
        ex.submit(Task(0, 0, 10, {"lr": 0.5}))
        ex.wait(every=True)
        trained = ex.get_state(0)
        assert trained["x"] > 0 and ex.get_state(1)["x"] == 0
        ex.copy(0, 2)
        assert ex.get_state(2) == trained
        ex.set_state(1, trained)
        ex.submit(Task(1, 0, 10, {"lr": 0.5}))
        ex.submit(Task(2, 0, 10, {"lr": 0.5}))
        r1, r2 = sorted(ex.wait(every=True), key=lambda r: r.worker)
        assert r1.score == r2.score and ex.test(1) == r1.score
    finally:
        ex.close()


def sigkill_slot(ex, slot: int) -> None:
    os.kill(ex.procs[slot].pid, signal.SIGKILL)


def kill_actor(ex, slot: int) -> None:
    import ray

    ray.kill(ex.actors[slot], no_restart=True)


class Killer:
    """Kills the slot that was just sent the k-th task, for ``kills`` values of k drawn
    with a seed from the first ``within`` tasks: every kill lands while that task is in
    flight, whatever the machine's load (no clock involved, so no race to lose)."""

    def __init__(self, executor, seed: int, kills: int, within: int = 60, how=sigkill_slot):
        rng = np.random.default_rng(seed)
        self.at = {int(k) for k in rng.choice(np.arange(2, within), size=kills, replace=False)}
        self.ex, self.how, self.sent, self.done = executor, how, 0, 0
        dispatch = executor.dispatch

        def dispatch_then_kill(slot, job):
            dispatch(slot, job)
            self.sent += 1
            if self.sent in self.at:
                self.how(self.ex, slot)
                self.done += 1

        executor.dispatch = dispatch_then_kill


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_killed_worker_processes_do_not_lose_or_double_count_steps(tmp_path, mode):
    cfg = config("fire", mode=mode, trainable="toys:SlowClimb", args={"delay": 0.003})
    ex = ProcessExecutor(2, max_retries=50)
    killer = Killer(ex, seed=7, kills=6)
    result = run(cfg, tmp_path / "k", executor=ex)
    assert killer.done == 6
    check_accounting(tmp_path / "k", 300)
    faults = [e for e in read_events(tmp_path / "k/events.jsonl") if e["ev"] == "fault"]
    assert faults and all(f["reason"].startswith("exit code -9") for f in faults)
    assert result["best"]["score"] > 0.9
    if mode == "sync":  # retries re-run from the last good state: nothing changes
        run(config("fire", mode=mode), tmp_path / "ref")
        assert result["best"] == run(config("fire"), tmp_path / "ref2")["best"]


def test_a_task_that_keeps_killing_its_worker_fails_and_is_replaced(tmp_path):
    cfg = config("pbt", trainable="toys:Suicidal", max_retries=1)
    result = run(cfg, tmp_path / "s", executor=ProcessExecutor(2, max_retries=1))
    events = list(read_events(tmp_path / "s/events.jsonl"))
    failed = [e for e in events if e["ev"] == "fault" and e["action"] == "failed"]
    assert failed
    errors = [e for e in events if e["ev"] == "result" and "died" in e.get("error", "")]
    assert errors and all(e["score"] is None for e in errors)
    check_accounting(tmp_path / "s", 300)
    assert result["counts"]["diverged"] >= 1


def test_devices_pin_slots_and_reach_the_trainable():
    ex = ProcessExecutor(2, devices=["cuda:1", "cpu"])
    ex.start(TrainableSpec("toys:DeviceProbe"), [0, 1])
    try:
        s0, s1 = ex.get_state(0), ex.get_state(1)
    finally:
        ex.close()
    assert (s0["device"], s0["visible"]) == ("cuda:0", "1")
    assert s1["device"] == "cpu"


def test_more_slots_than_devices_is_refused():
    with pytest.raises(ConfigError, match="slots: 3 slots but devices names 2"):
        config(executor="processes", slots=3, devices="cuda:0,cuda:1")
    with pytest.raises(ConfigError, match="slots"):
        ProcessExecutor(3, devices=["cuda:0"])
    assert config(executor="processes", devices=2).devices == ("cuda:0", "cuda:1")


@pytest.mark.parametrize("kind", REMOTE)
def test_a_trainable_the_worker_cannot_import_fails_before_training(
    tmp_path, monkeypatch, kind, ray_session
):
    monkeypatch.setenv("TOYS_CONTROLLER_PID", str(os.getpid()))
    cfg = config("pbt", trainable="toys_controller_only:Climb")
    with pytest.raises(ConfigError, match="only imports in the controller"):
        run(cfg, tmp_path / "x", executor=make(kind))
    assert not (tmp_path / "x").exists()  # nothing written: the directory can be reused
    run(config("pbt"), tmp_path / "x")


@pytest.mark.ray
def test_lost_ray_actors_are_replaced_and_no_step_is_lost(tmp_path, ray_session):
    cfg = config("fire", mode="async", trainable="toys:SlowClimb", args={"delay": 0.003})
    ex = make("ray", max_retries=50)
    killer = Killer(ex, seed=11, kills=3, how=kill_actor)
    result = run(cfg, tmp_path / "k", executor=ex)
    assert killer.done == 3
    check_accounting(tmp_path / "k", 300)
    faults = [e for e in read_events(tmp_path / "k/events.jsonl") if e["ev"] == "fault"]
    assert faults
    assert result["best"]["score"] > 0.9


@pytest.mark.ray
def test_an_unreachable_ray_address_fails_before_training(tmp_path):
    cfg = config("pbt", executor="ray", ray={"address": "127.0.0.1:1"})
    with pytest.raises(ConfigError, match="ray.address: cannot reach Ray at 127.0.0.1:1"):
        run(cfg, tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_crashed_run_on_worker_processes_resumes(tmp_path, mode):
    """Checkpoints read states from the process executor; resume loads them back."""
    from firepbt.api import resume

    class Crash(Exception):
        pass

    seen = []

    def crash(event):
        seen.append(event)
        if len(seen) == 100:
            raise Crash

    cfg = config("pbt", mode=mode, executor="processes", slots=2)
    ref = run(cfg, tmp_path / "ref")
    with pytest.raises(Crash):
        run(cfg, tmp_path / "run", observers=[crash])
    resumed = resume(tmp_path / "run")
    assert resumed is not None
    if mode == "sync":  # deterministic: the same run as the uninterrupted one
        assert (tmp_path / "ref/result.json").read_bytes() == (
            tmp_path / "run/result.json"
        ).read_bytes()
    else:
        assert resumed["best"]["score"] > 0.9 and ref["best"]["score"] > 0.9


@pytest.mark.parametrize("kind", ["inprocess", *REMOTE])
def test_replay_trains_on_a_worker_not_in_the_controller(tmp_path, kind, ray_session):
    cfg = config("pbt", trainable="toys:PidProbe")
    result = run(cfg, tmp_path / "r", executor=make(kind))
    where = result["replay"]["test"]  # the pid of the process that trained the replay
    assert (where == os.getpid()) == (kind == "inprocess")
    reference = run(cfg, tmp_path / "ref")["replay"]["score"]
    assert result["replay"]["score"] == reference


@pytest.mark.ray
@pytest.mark.parametrize(
    ("ray_table", "message"),
    [
        ({"cpus": 3}, "slots: 2 slots of 3 CPU and 0 GPU each"),  # the session Ray has 4
        ({"gpus": 0.5}, "slots: 2 slots of 1 CPU and 0.5 GPU each"),  # and no GPU
    ],
)
def test_a_cluster_too_small_for_the_slots_fails_at_once(tmp_path, ray_table, message, ray_session):
    cfg = config("pbt", executor="ray", slots=2, ray=ray_table)
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_ray_code_shipping_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="ray.working_dir: 'nowhere' is not a directory"):
        config(executor="ray", ray={"working_dir": "nowhere"})
    with pytest.raises(ConfigError, match="ray.runtime_env: expected dict"):
        config(executor="ray", ray={"runtime_env": "x"})
    with pytest.raises(ConfigError, match="ray.node_wait: must be > 0"):
        config(executor="ray", ray={"node_wait": 0})
    cfg = config(
        executor="ray", ray={"working_dir": str(tmp_path), "runtime_env": {"env_vars": {"A": "1"}}}
    )
    assert cfg.ray.env() == {"env_vars": {"A": "1"}, "working_dir": str(tmp_path.resolve())}


@pytest.mark.ray
def test_a_runtime_env_ray_cannot_build_fails_before_training(tmp_path):
    """In a fresh process (its own local Ray): one line, exit status 2, nothing written."""
    import subprocess
    import sys

    (tmp_path / "exp.toml").write_text(
        'trainable = "toys:Climb"\ndirection = "max"\nsteps = 20\neval_interval = 10\n'
        'ready_interval = 10\nexecutor = "ray"\nslots = 1\n'
        '[space.lr]\nkind = "uniform"\nlow = 0.1\nhigh = 0.5\n'
        '[algorithm]\nname = "random"\npopulation = 2\n'
        '[ray]\nruntime_env = {py_modules = ["/no/such/module/dir"]}\n'
    )
    here = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(here.parent / "src"), str(here)]))
    cmd = [sys.executable, "-m", "firepbt", "run", "exp.toml", "--out", "out"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("firepbt: error: ray.runtime_env: could not start Ray")
    assert not (tmp_path / "out").exists()


def test_fractional_gpus_put_several_slots_on_one_gpu():
    pytest.importorskip("ray")
    from firepbt.executors.ray import slots_that_fit

    nodes = [
        {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}},
        {"Alive": True, "Resources": {"CPU": 2.0, "GPU": 2.0}},
        {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}},  # a dead node holds none
        {"Alive": True, "Resources": {"CPU": 0.0}},  # a head node without CPUs
    ]
    assert slots_that_fit(nodes, cpus=1, gpus=0.5) == 2 + 2  # 2 per GPU; node 2: its CPUs
    assert slots_that_fit(nodes, cpus=0.5, gpus=0.5) == 2 + 4
    assert slots_that_fit(nodes, cpus=1, gpus=0) == 8 + 2
    assert slots_that_fit(nodes, cpus=1, gpus=1.5) == 1


def test_a_worker_process_restarted_before_a_test_answers_it():
    """A slot that died while idle is restarted by the test that finds it dead; the
    restarted process holds no network yet and used to answer nothing (a missing score)."""
    ex = ProcessExecutor(1)
    ex.start(TrainableSpec("toys:Climb"), [1, 2])
    try:
        ex.submit(Task(0, 0, 10, {"lr": 0.5}))
        (r,) = ex.wait(every=True)
        (proc,) = ex.procs.values()
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert ex.test(0) == r.score  # the retry, on the restarted process
        (fault,) = ex.take_faults()
        assert (fault["during"], fault["action"]) == ("test", "retry")
    finally:
        ex.close()
