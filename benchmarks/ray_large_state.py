"""A large network's state between Ray workers on two nodes: time, controller memory, store.

A real Ray cluster on this machine (a head with no CPUs, where the controller runs, and
two worker nodes of one CPU each, started with ``ray start`` inside a private network and
PID namespace: see tests/ray_cluster.py). Two workers hold a ``--mb`` MB state (one
float32 array); each round both train one step at once, one on each node, then worker 1
copies worker 0 (``executor.copy``): in the next round worker 1's actor, on the other
node, loads worker 0's state from the object store. Prints, per round, the wall time; the
controller's resident memory (it never holds a state: object references only); and the
object store's usage across the cluster after the first round, after the last and once
the executor has let go of its references (no growth from states no longer referenced:
ray#10890, ray#12208).

    PYTHONPATH=src python benchmarks/ray_large_state.py                 # 200 MB, 100 copies
    PYTHONPATH=src python benchmarks/ray_large_state.py --mb 50 --copies 10

Each round moves about 4 states: both new states into their nodes' stores, both copied
to the controller's node (so that a state survives the node that made it: see
firepbt.executors.ray), and worker 0's state to worker 1's node.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PORT = 6380


class Big:
    """A trainable whose state is one ``mb`` MB float32 array."""

    def __init__(self, seed: int, mb: int = 200) -> None:
        self.w = np.full(mb * 2**20 // 4, float(seed), dtype=np.float32)

    def train(self, steps: int, hparams: dict) -> None:
        self.w[:1024] += steps

    def evaluate(self) -> float:
        return float(self.w[0])

    def state_dict(self) -> dict:
        return {"w": self.w}

    def load_state_dict(self, state: dict) -> None:
        self.w = np.array(state["w"])  # a writable copy of the store's read-only view


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def store_mb() -> tuple[float, int]:
    """Object store usage across the cluster (MiB, objects), from Ray's memory summary."""
    from ray._private.internal_api import memory_summary

    text = memory_summary(address=f"127.0.0.1:{PORT}", stats_only=True)
    m = re.search(r"Plasma memory usage (\d+) MiB, (\d+) objects", text)
    return (float(m.group(1)), int(m.group(2))) if m else (float("nan"), -1)


def start_cluster(temp: Path, env: dict[str, str], store_bytes: int) -> None:
    def ray_start(*args: str) -> None:
        subprocess.run([str(BIN / "ray"), "start", *args], env=env, check=True, capture_output=True)

    common = ["--node-ip-address=127.0.0.1", f"--object-store-memory={store_bytes}"]
    ray_start(
        "--head",
        f"--port={PORT}",
        "--num-cpus=0",
        f"--temp-dir={temp}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        *common,
    )
    for _ in range(2):
        ray_start(f"--address=127.0.0.1:{PORT}", "--num-cpus=1", *common)


def inside(args: argparse.Namespace) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    temp = Path(tempfile.mkdtemp(prefix="fpb", dir="/tmp"))
    token = secrets.token_hex(32)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0")
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    start_cluster(temp, env, store_bytes=max(8 * args.mb, 1000) * 2**20)
    import ray

    from firepbt.core.trainable import TrainableSpec
    from firepbt.executors.base import Task
    from firepbt.executors.ray import RayExecutor

    ray.init(address=f"127.0.0.1:{PORT}", log_to_driver=False)
    ex = RayExecutor(2)
    ex.start(TrainableSpec("ray_large_state:Big", {"mb": args.mb}), [0, 1])
    nodes = ex.nodes()
    rss0 = rss_mb()
    seconds, rss, store = [], [], []
    for i in range(args.copies):
        t0 = time.perf_counter()
        ex.submit(Task(0, i, 1, {}))
        ex.submit(Task(1, i, 1, {}))
        ex.wait(every=True)
        ex.copy(0, 1)
        seconds.append(time.perf_counter() - t0)
        rss.append(rss_mb())
        store.append(store_mb())  # (not timed)
    time.sleep(2)  # the store frees objects asynchronously
    settled = store_mb()
    check = float(ray.get(ex.refs[1].handle)["w"][0])  # worker 1 holds worker 0's state
    ex.close()
    time.sleep(2)  # the store frees objects asynchronously
    released = store_mb()
    s = np.array(seconds)
    report = {
        "mb": args.mb,
        "copies": args.copies,
        "slots_on_distinct_nodes": len(set(nodes.values())) == 2,
        "round_s": {
            "median": float(np.median(s)),
            "p90": float(np.quantile(s, 0.9)),
            "first": float(s[0]),
            "max": float(s.max()),
        },
        "controller_rss_mb": {
            "after_start": rss0,
            **{f"after_round_{k}": rss[k - 1] for k in (1, 10, 50) if k <= len(rss)},
            "last": rss[-1],
            "max": max(rss),
        },
        "store_mib_objects": {
            "after_round_1": store[0],
            "max_over_rounds": max(store),
            "after_last_round": store[-1],
            "2_s_later": settled,
            "after_close": released,
        },
        "worker1_value": check,
    }
    print(json.dumps(report, indent=1))
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=200)
    p.add_argument("--copies", type=int, default=100)
    args = p.parse_args()
    if os.environ.get("FIREPBT_BENCH_NS") == "1":
        sys.path.insert(0, str(HERE))  # the actors import Big from here (same machine)
        inside(args)
        return
    cmd = [
        "unshare",
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "env",
        "FIREPBT_BENCH_NS=1",
        sys.executable,
        __file__,
        *sys.argv[1:],
    ]
    raise SystemExit(subprocess.run(cmd).returncode)


if __name__ == "__main__":
    main()
