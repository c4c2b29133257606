"""A real multi-node Ray cluster on one machine, for the ``ray_cluster`` tests.

Run as ``unshare --net --pid --fork --kill-child --mount-proc python ray_cluster.py
SCENARIO.json``: in a private network namespace where only loopback exists (nothing can
listen outside 127.0.0.1) and a private PID namespace (every Ray process ends with this
script). It starts a head node (no CPUs: the controller's node) and worker nodes with
``ray start``, joined with token authentication, runs ``firepbt run`` against the cluster
while it kills worker nodes' raylets (SIGKILL) at the scenario's moments, and writes a
JSON report for the test to check.

The trainable (``climbing:Climb``, written into a fresh directory with the config) is
shipped to the nodes by ``[ray] working_dir``: the actors get no path to that directory,
so they can import it only from what Ray ships. Each network it builds appends
``pid node_id module_file`` to a file, which shows where the work ran.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PORT = 6379

TRAINABLE = '''
import os, time


class Climb:
    """Deterministic; ``delay`` seconds per train call; logs where each network lives."""

    def __init__(self, seed, delay=0.02, log=None, gate=None):
        self.x, self.delay, self.gate = 0.0, delay, gate
        import ray
        self.node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "-"
        if log:
            with open(log, "a") as f:
                f.write(f"{os.getpid()} {self.node} {os.path.abspath(__file__)}\\n")

    def train(self, steps, hparams):
        time.sleep(self.delay)
        while self.gate and self._held():  # the harness holds the nodes its gate names
            time.sleep(0.05)
        lr = hparams["lr"]
        for _ in range(steps):
            self.x += lr * (1.0 - self.x) - 0.5 * lr * lr * 0.1

    def _held(self):
        try:
            with open(self.gate) as f:
                return self.node in f.read().split()
        except FileNotFoundError:
            return False

    def evaluate(self):
        return self.x

    def state_dict(self):
        return {"x": self.x}

    def load_state_dict(self, state):
        self.x = state["x"]
'''

CONFIG = """
trainable = "climbing:Climb"
direction = "max"
seed = 3
steps = {steps}
eval_interval = 10
ready_interval = 50
mode = "{mode}"
executor = "ray"
slots = {slots}
max_retries = 20

[args]
delay = {delay}
log = "{log}"
gate = "{gate}"

[space.lr]
kind = "log_uniform"
low = 0.001
high = 1.0

[algorithm]
name = "fire"
subpopulations = 2
subpopulation_size = 4
evaluators = 2
max_eval_steps = 100
smooth = false

[ray]
address = "127.0.0.1:{port}"
working_dir = "."
node_wait = {node_wait}
"""


def sh(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, **kw)


def raylets() -> set[int]:
    out = sh("ps", "-eo", "pid=,comm=").stdout.split("\n")
    return {int(line.split()[0]) for line in out if line.strip().endswith("raylet")}


class Cluster:
    def __init__(self, temp: Path, env: dict[str, str]) -> None:
        self.temp, self.env = temp, env
        self.workers: list[int] = []  # raylet pid of each worker node, in start order

    def ray(self, *args: str) -> None:
        r = sh(str(BIN / "ray"), "start", *args, env=self.env)
        if r.returncode:
            raise SystemExit(f"ray start {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")

    def head(self) -> None:
        self.ray(
            "--head",
            f"--port={PORT}",
            "--num-cpus=0",
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={self.temp}",
            "--include-dashboard=false",
            "--disable-usage-stats",
        )

    def add_worker(self, cpus: int = 1) -> int:
        before = raylets()
        self.ray(f"--address=127.0.0.1:{PORT}", f"--num-cpus={cpus}", "--node-ip-address=127.0.0.1")
        (pid,) = raylets() - before
        self.workers.append(pid)
        return pid


def node_id(raylet: int) -> str:
    """The Ray node id of the node whose raylet has this process id."""
    args = Path(f"/proc/{raylet}/cmdline").read_bytes().split(b"\0")
    (arg,) = [a for a in args if a.startswith(b"--node_id=")]
    return arg.split(b"=", 1)[1].decode()


def built_on(log: Path) -> set[str]:
    """The nodes that built a network so far, from the origin log (complete lines only)."""
    if not log.exists():
        return set()
    return {line.split()[1] for line in log.read_text().splitlines() if line.count(" ") >= 2}


def results_in(events: Path) -> int:
    if not events.exists():
        return 0
    return sum('"ev": "result"' in line for line in events.read_text().splitlines())


def firepbt(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "firepbt"), *args],
        env=env,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def main() -> None:
    scenario = json.loads(Path(sys.argv[1]).read_text())
    report_path = Path(scenario["report"])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    temp = Path(tempfile.mkdtemp(prefix="fpr", dir="/tmp"))  # short: unix socket paths
    work = Path(scenario["work"])
    env = dict(os.environ)
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONPATH=str(HERE.parent / "src"),  # firepbt itself, as an installed package would be
        FIREPBT_FSYNC="0",
        # Ray declares a node dead after failure_threshold missed health checks, period_ms
        # apart (defaults 5 and 3000: about 15 s, measured 14 s here); shorter for the tests
        RAY_health_check_period_ms="1000",
        RAY_health_check_timeout_ms="1000",
        RAY_health_check_failure_threshold="3",
    )
    env.update(scenario.get("env", {}))
    report: dict = {"runs": {}, "t": {}}
    t0 = time.monotonic()
    cluster = Cluster(temp, env)
    try:
        cluster.head()
        for _ in range(scenario.get("nodes", 2)):
            cluster.add_worker()
        report["t"]["cluster_up"] = time.monotonic() - t0
        code = work / "code"
        code.mkdir(parents=True)
        (code / "climbing.py").write_text(TRAINABLE)
        log = work / "origins.txt"
        config = CONFIG
        if scenario.get("address_from_env"):
            config = config.replace('address = "127.0.0.1:{port}"\n', "")
        (code / "exp.toml").write_text(
            config.format(
                mode=scenario.get("mode", "sync"),
                steps=scenario.get("steps", 300),
                slots=scenario.get("slots", 2),
                delay=scenario.get("delay", 0.05),
                log=log,
                gate=work / "gate",
                port=PORT,
                node_wait=scenario.get("node_wait", 60),
            )
        )
        for run in scenario["runs"]:
            name = run["name"]
            out = work / name
            t1 = time.monotonic()
            args = (
                ["resume", str(work / run["resume"])]
                if "resume" in run
                else ["run", "exp.toml", "--out", str(out), "--quiet"]
            )
            run_env = env
            if scenario.get("address_from_env"):  # as inside `ray job submit`
                run_env = dict(env, RAY_ADDRESS=f"127.0.0.1:{PORT}")
            proc = firepbt(*args, env=run_env, cwd=code)
            events = (work / run.get("resume", name)) / "events.jsonl"
            kills, joined, sockets = [], [], None
            for k in run.get("kill_after", []):  # SIGKILL a worker node's raylet
                while proc.poll() is None and results_in(events) < k:
                    time.sleep(0.05)
                if proc.poll() is not None:
                    break
                if sockets is None:
                    sockets = sh("ss", "-ltnpH").stdout
                alive = [p for p in cluster.workers if p not in kills]
                victim = alive[len(kills) % len(alive)]
                if run.get("join_after_fault"):
                    held = [node_id(p) for p in alive if p != victim]
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)
                report["t"].setdefault(name + "_kills", []).append(time.monotonic() - t1)
            if kills:  # how long until the controller journals the loss
                while proc.poll() is None and '"ev": "fault"' not in events.read_text():
                    time.sleep(0.1)
                report["t"][name + "_fault_seen"] = time.monotonic() - t1
                if run.get("join_after_fault") and proc.poll() is None:
                    # hold the surviving nodes' train calls from now until the lost slot's
                    # replacement has built a network on the node that joins: the
                    # surviving slot could otherwise finish the run before that node is up
                    # (a race, seen under load) and the replacement would never run there.
                    # Not before the loss is journalled: the controller notices it only
                    # when it next gives the lost actor work, which a held survivor could
                    # prevent. The loss is journalled about 3 s after the kill (health
                    # checks 3 x 1 s), when k <= 25 of the run's 300 tasks plus those the
                    # survivor did meanwhile (0.05 s each: about 60) are done, so over
                    # 10 s of one slot's work is left: the gate comes first.
                    (work / "gate").write_text(" ".join(held))
                    nodes_before = built_on(log)
                    joined.append(cluster.add_worker())  # a node joins once the loss is known
                    deadline = time.monotonic() + scenario.get("join_timeout", 300)
                    while proc.poll() is None and time.monotonic() < deadline:
                        if built_on(log) - nodes_before:
                            break  # the replacement built a network on the new node
                        time.sleep(0.1)
                    report["t"][name + "_replacement_on_new_node"] = time.monotonic() - t1
                (work / "gate").unlink(missing_ok=True)
            if sockets is None and proc.poll() is None:
                sockets = sh("ss", "-ltnpH").stdout
            stdout, stderr = proc.communicate(timeout=scenario.get("run_timeout", 600))
            if events.exists():  # before a later run (a resume) cuts the journal back
                lines = [json.loads(x) for x in events.read_text().splitlines() if x.strip()]
                report[name + "_faults"] = [e for e in lines if e["ev"] == "fault"]
            report["runs"][name] = {
                "rc": proc.returncode,
                "stdout": stdout[-3000:],
                "stderr": stderr[-3000:],
                "seconds": time.monotonic() - t1,
                "killed": kills,
                "joined": joined,
                "sockets": sockets or "",
            }
            for _ in range(run.get("add_nodes_after", 0)):
                cluster.add_worker()
        report["origins"] = log.read_text() if log.exists() else ""
        report["code"] = str(code)
        report["temp"] = str(temp)
    finally:
        report["t"]["total"] = time.monotonic() - t0
        report_path.write_text(json.dumps(report, indent=1))
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
