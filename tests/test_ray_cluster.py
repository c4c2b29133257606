"""FIRE PBT on a real multi-node Ray cluster that loses nodes (``ray_cluster`` tests).

Each test starts, in a private network and PID namespace (``unshare``; only loopback
exists there and every process ends with it), a head node and two worker nodes with
``ray start`` and runs ``firepbt run`` against them (see ``ray_cluster.py``). Worker
nodes are lost by SIGKILL of their raylet after a number of results drawn from a seeded
generator. The trainable is shipped to the nodes by ``[ray] working_dir``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_executors import check_accounting

from firepbt.runner.journal import read_events

pytest.importorskip("ray")
HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.ray_cluster


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "true"]
    return subprocess.run(probe, capture_output=True).returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _can_unshare(), reason="needs unshare --net --pid (root or user namespaces)"
)


def cluster(tmp_path: Path, **scenario) -> dict:
    """Run a scenario in its own namespaces; every Ray process it started is gone after."""
    spec = tmp_path / "scenario.json"
    report = tmp_path / "report.json"
    spec.write_text(json.dumps({"report": str(report), "work": str(tmp_path / "w"), **scenario}))
    cmd = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
    proc = subprocess.run(
        [*cmd, sys.executable, str(HERE / "ray_cluster.py"), str(spec)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(report.read_text())
    left = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    assert out["temp"] not in left, "a Ray process of the cluster outlived the test"
    print(json.dumps(out["t"]))  # cluster start, time to notice a lost node (pytest -s)
    return out


def only_loopback(ss: str) -> None:
    listening = [line.split()[3] for line in ss.splitlines() if line.strip()]
    assert listening, "nothing listening: ss saw no Ray"
    for addr in listening:
        host = addr.rsplit(":", 1)[0].strip("[]")
        assert host in ("127.0.0.1", "::ffff:127.0.0.1", "::1"), f"listening on {addr}"


def built(origins: str) -> list[tuple[str, str]]:
    """(node, module file) of every network built ("-": outside Ray, the controller)."""
    rows = [line.split(" ", 2) for line in origins.splitlines()]
    return [(node, path) for _pid, node, path in rows]


def faults(run_dir: Path) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl") if e["ev"] == "fault"]


@needs_namespaces
def test_sync_run_loses_a_node_and_equals_the_undisturbed_run(tmp_path):
    k = int(np.random.default_rng(13).integers(5, 25))  # the moment: after k results
    out = cluster(
        tmp_path,
        mode="sync",
        runs=[{"name": "ref"}, {"name": "lost", "kill_after": [k], "join_after_fault": True}],
    )
    ref, lost = out["runs"]["ref"], out["runs"]["lost"]
    assert ref["rc"] == 0 and lost["rc"] == 0, lost["stderr"]
    assert lost["killed"] and lost["joined"]  # a node was lost, another joined mid-run
    w = tmp_path / "w"
    assert (w / "ref/result.json").read_bytes() == (w / "lost/result.json").read_bytes()
    check_accounting(w / "lost", 300)
    lost_tasks = [f for f in faults(w / "lost") if f["worker"] is not None]
    assert lost_tasks and all(f["action"] == "retry" for f in lost_tasks)
    assert all("Ray actor lost on node" in f["reason"] for f in lost_tasks)
    assert not faults(w / "ref")
    # the work ran on more than one node, from code Ray shipped (not the config's directory)
    nets = built(out["origins"])
    assert all(node != "-" for node, _ in nets)  # none in the controller: not the replay either
    # both first nodes, and the one that joined: the lost slot's replacement, which had no
    # room on the surviving node, went there
    assert len({node for node, _ in nets}) >= 3
    assert all("runtime_resources" in path and out["code"] not in path for _, path in nets)
    only_loopback(ref["sockets"])


@needs_namespaces
def test_async_run_loses_a_node_and_brings_every_member_to_the_budget(tmp_path):
    k = int(np.random.default_rng(17).integers(10, 80))
    # no [ray] address: RAY_ADDRESS names the cluster, as inside `ray job submit`
    out = cluster(
        tmp_path, mode="async", address_from_env=True, runs=[{"name": "lost", "kill_after": [k]}]
    )
    lost = out["runs"]["lost"]
    assert lost["rc"] == 0, lost["stderr"]
    check_accounting(tmp_path / "w/lost", 300)
    assert any(f["action"] == "retry" for f in faults(tmp_path / "w/lost"))


@needs_namespaces
def test_losing_every_node_stops_with_a_message_and_a_checkpoint_that_resumes(tmp_path):
    rng = np.random.default_rng(19)
    first = int(rng.integers(10, 60))
    out = cluster(
        tmp_path,
        mode="sync",
        node_wait=5,
        runs=[
            {"name": "gone", "kill_after": [first, first + 5], "add_nodes_after": 2},
            {"name": "again", "resume": "gone"},
            {"name": "ref"},
        ],
    )
    gone, again = out["runs"]["gone"], out["runs"]["again"]
    assert gone["rc"] == 1, gone["stderr"]
    assert "every Ray worker was lost" in gone["stderr"]
    assert "firepbt resume" in gone["stderr"]
    lost = out["gone_faults"]  # the journal of the stopped run, before it was resumed
    tasks = [f for f in lost if f["worker"] is not None]  # (others: a replacement lost too)
    assert tasks and all(f["action"] == "retry" for f in tasks)
    assert again["rc"] == 0, again["stderr"]
    w = tmp_path / "w"
    assert (w / "gone/result.json").read_bytes() == (w / "ref/result.json").read_bytes()
