"""The local Ray the executor starts listens on 127.0.0.1 only (checked with ``ss``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
HERE = Path(__file__).resolve().parent

PROBE = r"""
import json, os, subprocess, sys
from firepbt.core.trainable import TrainableSpec
from firepbt.executors.ray import RayExecutor

ex = RayExecutor(1)
ex.start(TrainableSpec("toys:Climb"), [0])  # its own local Ray, as a run starts it
try:
    rows = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout
    children = {}
    for line in rows.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [os.getpid()]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo += children.get(p, [])
    ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    ours = [l.split()[3] for l in ss.splitlines() if any(f"pid={p}," in l for p in tree)]
    print(json.dumps(ours))
finally:
    ex.close()
"""


@pytest.mark.ray
@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_the_local_ray_listens_on_loopback_only():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), str(HERE)]))
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True
    )
    listening = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(listening) >= 3  # the GCS, the raylet, the worker: ss saw them
    for addr in listening:
        host = addr.rsplit(":", 1)[0].strip("[]")
        assert host in ("127.0.0.1", "::ffff:127.0.0.1", "::1"), f"Ray listens on {addr}"
