"""Executor overhead: a bare hand-written PBT loop against firepbt's executors.

16 workers, 100 training calls each, exploit-and-explore every 10 calls (truncation
PBT, synchronous), on NQM trainables that spend about ``--ms`` milliseconds of CPU per
training call (the closed-form NQM update, then a busy wait up to the target). Prints
wall time, the ratio to the bare loop and the overhead per training call in ms,
``(wall - executor start - bare wall) / calls`` (negative where slots run calls in
parallel); "x bare" is the same ratio without the start, which is printed apart (spawning
worker processes or actors happens once per experiment). "ckpt s" is the time the loop
spent taking checkpoints (pickling, and waiting for the previous background write).
``--repeat N`` runs each row N times, interleaved, and keeps each row's fastest run (on a
shared machine the minimum is the least disturbed estimate).

    PYTHONPATH=src python benchmarks/overhead.py            # everything (~4 min, 2 cores)
    PYTHONPATH=src python benchmarks/overhead.py --ms 1 --executors inprocess processes
    PYTHONPATH=src python benchmarks/overhead.py --ms 1 --executors inprocess --repeat 5
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # workers import BusyNQM from here

from firepbt.config import Config  # noqa: E402
from firepbt.runner.loop import Run  # noqa: E402
from firepbt.tasks.nqm import NQM  # noqa: E402

WORKERS, CALLS, EXPLOIT_EVERY, STEPS_PER_CALL = 16, 100, 10, 10


class BusyNQM(NQM):
    """NQM whose training call takes ``ms`` milliseconds of CPU."""

    def __init__(self, seed: int, ms: float = 1.0, dim: int = 1000) -> None:
        super().__init__(seed, dim=dim)
        self.ms = ms

    def train(self, steps: int, hparams: dict) -> None:
        end = time.perf_counter() + self.ms / 1000.0
        super().train(steps, hparams)
        while time.perf_counter() < end:
            pass


def bare_loop(ms: float, seed: int = 0) -> float:
    """PBT by hand: train all, evaluate all, every 10 calls the worst 25% copy the best."""
    rng = np.random.default_rng(seed)
    nets = [BusyNQM(int(s), ms) for s in rng.integers(2**31, size=WORKERS)]
    lrs = list(np.exp(rng.uniform(np.log(1e-3), np.log(1.0), WORKERS)))
    for call in range(1, CALLS + 1):
        losses = []
        for net, lr in zip(nets, lrs, strict=True):
            net.train(STEPS_PER_CALL, {"lr": lr})
            losses.append(net.evaluate())
        if call % EXPLOIT_EVERY == 0:
            order = np.argsort(losses)  # minimise
            k = WORKERS // 4
            for loser in order[-k:]:
                winner = int(order[rng.integers(k)])
                nets[loser].load_state_dict(nets[winner].state_dict())
                lrs[loser] = float(np.clip(lrs[winner] * rng.choice([0.8, 1.25]), 1e-4, 1.0))
    return min(net.evaluate() for net in nets)


def config(ms: float, executor: str, mode: str, slots: int | None) -> Config:
    data = {
        "trainable": "overhead:BusyNQM",
        "args": {"ms": ms},
        "direction": "min",
        "steps": CALLS * STEPS_PER_CALL,
        "eval_interval": STEPS_PER_CALL,
        "ready_interval": EXPLOIT_EVERY * STEPS_PER_CALL,
        "mode": mode,
        "replay": False,
        "executor": executor,
        "space": {"lr": {"kind": "log_uniform", "low": 1e-4, "high": 1.0, "init": [1e-3, 1.0]}},
        "algorithm": {"name": "pbt", "population": WORKERS},
    }
    if slots:
        data["slots"] = slots
    return Config.from_dict(data)


def timed_run(cfg: Config, out: Path) -> tuple[float, float, float]:
    """Wall time of a whole run, of its executor's start (spawning workers), and the
    time the loop spent taking checkpoints."""
    t0 = time.perf_counter()
    r = Run(cfg, out)
    start, spent = r.executor.start, [0.0]

    def timed_start(spec, seeds):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        start(spec, seeds)
        spent[0] = time.perf_counter() - t

    r.executor.start = timed_start  # type: ignore[method-assign]
    r.execute()
    return time.perf_counter() - t0, spent[0], sum(t for t, _ in r.checkpoint_stats)


def start_ray() -> tuple[float, str]:
    import ray

    before = set(os.listdir("/proc"))
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    seconds = time.perf_counter() - t0
    return seconds, ray_memory(before)


def ray_memory(before: set[str]) -> str:
    """Resident memory of the Ray processes started since ``before`` (Linux /proc), in MB."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid in before:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"ray" not in cmd or int(pid) == os.getpid():
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return f"{total / 1024:.0f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ms", type=float, nargs="+", default=[1.0, 20.0])
    ap.add_argument("--executors", nargs="+", default=["inprocess", "processes", "ray"])
    ap.add_argument("--slots", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    ap.add_argument("--repeat", type=int, default=1, help="runs per row; the fastest is kept")
    args = ap.parse_args()
    calls = WORKERS * CALLS
    print(
        f"# {WORKERS} workers x {CALLS} calls, exploit every {EXPLOIT_EVERY}; "
        f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}"
    )
    if "ray" in args.executors:
        seconds, memory = start_ray()
        print(f"# ray.init: {seconds:.2f} s; Ray processes after init: {memory}")
    print(
        f"{'ms/call':>7} {'runner':<22} {'wall s':>8} {'start s':>7} {'x bare':>7} "
        f"{'overhead ms/call':>17} {'ckpt s':>7}"
    )
    for ms in args.ms:
        rows: list[tuple[str, Config | None]] = [("bare loop", None)]
        for executor in args.executors:
            # Checkpoints (issue 5) are on by default; in-process also runs without them to
            # show the loop's own overhead apart from the checkpoint writes.
            variants = (
                [(None, "sync", True), (None, "sync", False)]
                if executor == "inprocess"
                else [(s, mode, True) for s in args.slots for mode in ("sync", "async")]
            )
            for slots, mode, checkpoints in variants:
                cfg = dataclasses.replace(
                    config(ms, executor, mode, slots), checkpoints=checkpoints
                )
                name = executor + (f" {slots} slot {mode}" if slots else f" {mode}")
                name += "" if checkpoints else " no ckpt"
                rows.append((name, cfg))
        best: dict[str, tuple[float, float, float]] = {}
        for _ in range(args.repeat):
            for name, cfg in rows:
                if cfg is None:
                    t0 = time.perf_counter()
                    bare_loop(ms)
                    got = (time.perf_counter() - t0, 0.0, 0.0)
                else:
                    with tempfile.TemporaryDirectory() as out:
                        got = timed_run(cfg, Path(out) / "run")
                if name not in best or got[0] - got[1] < best[name][0] - best[name][1]:
                    best[name] = got
        bare = best["bare loop"][0]
        for name, _ in rows:
            wall, start, ckpt = best[name]
            loop = wall - start
            over = (loop - bare) / calls * 1000
            print(
                f"{ms:7g} {name:<22} {wall:8.2f} {start:7.2f} {loop / bare:7.2f} {over:17.3f} "
                f"{ckpt:7.3f}",
                flush=True,
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"# controller peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
