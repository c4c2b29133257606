"""Durable state and ``firepbt resume`` (issue 5): kills at many moments, corrupted
checkpoints, refused resumes, garbage collection, journal before effect."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from firepbt.api import resume, run
from firepbt.config import Config
from firepbt.executors.inprocess import InProcessExecutor
from firepbt.runner.checkpoint import MAX_AGE, CheckpointStore, lock_run
from firepbt.runner.journal import read_events
from firepbt.runner.loop import Run

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"

BASE = {
    "trainable": "toys:Climb",
    "direction": "max",
    "seed": 0,
    "steps": 400,
    "eval_interval": 10,
    "ready_interval": 50,
    "space": {"lr": {"kind": "log_uniform", "low": 0.001, "high": 1.0}},
    "algorithm": {"name": "pbt", "population": 8},
}
FIRE = {
    "name": "fire",
    "subpopulations": 2,
    "subpopulation_size": 4,
    "evaluators": 2,
    "max_eval_steps": 100,
    "smooth": False,  # GP smoothing is slow; the decider's state is what matters here
}


def toml(data, prefix=""):
    """A tiny TOML writer for the configs above."""
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    for k, v in tables:
        lines.append(f"[{prefix}{k}]")
        lines.append(toml(v, f"{prefix}{k}."))
    return "\n".join(lines) + "\n"


def config(**kw):
    return Config.from_dict(dict(BASE, **kw))


def files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def python(*args, env=None, timeout=1800):  # generous: only a hang should hit it
    full = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{TESTS}", **(env or {}))
    return subprocess.run(
        [sys.executable, *args], env=full, capture_output=True, text=True, timeout=timeout
    )


class Crash(Exception):
    pass


def crash_at(k):
    """An observer that stops the run (as a crash would) at its k-th event."""
    seen = []

    def observe(event):
        seen.append(event)
        if len(seen) == k:
            raise Crash(k)

    return observe


# -- kills at random moments ---------------------------------------------------------


@pytest.mark.parametrize(
    "mode, algorithm, seed",
    [("sync", None, 11), ("async", None, 12), ("async", FIRE, 13)],
)
def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path, mode, algorithm, seed):
    """A chain of real processes, each SIGKILLed at a seeded random moment: after a
    journal write, before an fsync, before a rename or in the middle of a checkpoint file
    write; each resumes the last. The final result.json equals the uninterrupted one."""
    data = dict(BASE, mode=mode)
    if algorithm:  # FIRE PBT is slower per step: a shorter run
        data.update(algorithm=algorithm, steps=200, ready_interval=20)
    cfg_path = tmp_path / "exp.toml"
    cfg_path.write_text(toml(data))
    ref = tmp_path / "ref"
    run(Config.from_dict(data, search_path=str(TESTS)), ref)
    out = tmp_path / "run"
    rng = np.random.default_rng(seed)
    kills, finished = 0, False
    for i in range(6 if algorithm else 9):
        kind = ["event", "fsync", "replace", "write"][i % 4]
        # a checkpoint is 2 file writes, 2 renames and 5 fsyncs (journal, pack, its
        # directory, manifest, its directory): kill within the next two checkpoints
        at = int(rng.integers(1, 160 if kind == "event" else 5))
        args = ["run", str(cfg_path), "--out", str(out)] if i == 0 else ["resume", str(out)]
        env = {
            "KILL_ON": kind,
            "KILL_AT": str(at),
            "FIREPBT_FSYNC": "1" if kind == "fsync" else "0",
        }
        r = python(str(TESTS / "killer.py"), *args, "--quiet", env=env)
        if r.returncode == 0:
            finished = True
            break
        assert r.returncode == -signal.SIGKILL, r.stderr
        kills += 1
    assert kills >= 4
    if not finished:
        r = python("-m", "firepbt", "resume", str(out), "--quiet")
        assert r.returncode == 0, r.stderr
    assert (out / "result.json").read_bytes() == (ref / "result.json").read_bytes()
    # a resume cuts the journal back to its checkpoint, so earlier resume lines may go
    assert any(ev["ev"] == "resume" for ev in read_events(out))
    # apart from the resume lines, the journal is the uninterrupted one
    lines = [x for x in (out / "events.jsonl").read_text().splitlines() if '"resume"' not in x]
    assert lines == (ref / "events.jsonl").read_text().splitlines()
    assert not (out / "checkpoints").exists()  # collected at the end


def test_sigkill_at_random_times_during_a_slow_run(tmp_path):
    """The plain CLI, killed by a signal from outside after seeded random delays."""
    data = dict(BASE, trainable="toys:SlowClimb", args={"delay": 0.004})
    cfg_path = tmp_path / "exp.toml"
    cfg_path.write_text(toml(data))
    ref = tmp_path / "ref"
    run(Config.from_dict(data, search_path=str(TESTS)), ref)
    out = tmp_path / "run"
    rng = np.random.default_rng(5)
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{TESTS}", FIREPBT_FSYNC="1")
    for i in range(3):
        args = ["run", str(cfg_path), "--out", str(out)] if i == 0 else ["resume", str(out)]
        p = subprocess.Popen(
            [sys.executable, "-m", "firepbt", *args, "--quiet"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # the random delay starts once the run is under way (its first checkpoint written),
        # so that a slow machine (a long interpreter start) cannot turn it into a kill
        # before anything exists
        while i == 0 and not (out / "checkpoints").exists() and p.poll() is None:
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.8, 1.8)))
        p.send_signal(signal.SIGKILL)
        p.wait()
    r = python("-m", "firepbt", "resume", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert (out / "result.json").read_bytes() == (ref / "result.json").read_bytes()


# -- corrupted checkpoints -------------------------------------------------------------


def crashed_run(tmp_path, k=300, **kw):
    out = tmp_path / "run"
    with pytest.raises(Crash):
        run(config(**kw), out, observers=[crash_at(k)])
    return out, CheckpointStore(out)


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", ["flip-state", "truncate-state", "truncate-manifest"])
def test_a_corrupted_checkpoint_is_detected_and_the_previous_one_used(tmp_path, damage):
    ref = tmp_path / "ref"
    run(config(), ref)
    out, store = crashed_run(tmp_path)
    latest, previous = store.manifests()[:2]
    manifest = store.manifest_path(latest)
    body = json.loads(manifest.read_text())["body"]
    pack, offset, length, _ = body["states"][2]  # worker 2's bytes in the newest pack
    assert pack == latest  # (every member trained since the previous checkpoint)
    blob = store.pack_path(pack)
    if damage == "flip-state":
        flip(blob, offset + length // 2)
    elif damage == "truncate-state":
        blob.write_bytes(blob.read_bytes()[: offset + length // 2])
    else:
        truncate(manifest)
    resume(out)
    assert (out / "result.json").read_bytes() == (ref / "result.json").read_bytes()
    notes = [ev for ev in read_events(out) if ev["ev"] == "checkpoint_corrupt"]
    assert len(notes) == 1
    note = notes[0]
    assert note["checkpoint"] == latest and note["fallback"] == previous
    if damage == "truncate-manifest":
        assert note["file"] == f"checkpoints/{manifest.name}" and "unreadable" in note["problem"]
    else:
        assert note["worker"] == 2 and "sha256 mismatch" in note["problem"]
        assert note["file"] == f"checkpoints/packs/{blob.name}"
    assert (out / (note["file"] + ".corrupt")).is_file()  # set aside, never loaded


def test_with_every_checkpoint_corrupt_the_run_restarts_from_the_start(tmp_path):
    ref = tmp_path / "ref"
    run(config(), ref)
    out, store = crashed_run(tmp_path)
    for seq in store.manifests():
        flip(store.manifest_path(seq), 40)
    resume(out)
    assert (out / "result.json").read_bytes() == (ref / "result.json").read_bytes()
    events = list(read_events(out))
    assert events[0]["ev"] == "start"
    assert [ev["fallback"] for ev in events if ev["ev"] == "checkpoint_corrupt"] == [None, None]


def test_a_run_killed_before_its_first_checkpoint_restarts(tmp_path):
    ref = tmp_path / "ref"
    run(config(), ref)
    out, store = crashed_run(tmp_path, k=20)
    assert store.manifests() == []
    resume(out)
    assert (out / "result.json").read_bytes() == (ref / "result.json").read_bytes()


# -- refused resumes -------------------------------------------------------------------


def edit_run_json(out, change):
    info = json.loads((out / "run.json").read_text())
    change(info)
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n")


@pytest.mark.parametrize(
    "case, message",
    [
        ("not-a-run", "not a firepbt run (no run.json)"),
        ("version", "written by firepbt 0.0.1"),
        ("format", "run format 99"),
        ("edited", "run.json differs from the journal's config: steps: 400 -> 800"),
        ("other-config", "the config differs from the run's: algorithm.population: 8 -> 6"),
    ],
)
def test_refused_resume_says_why_and_modifies_nothing(tmp_path, case, message):
    out, _ = crashed_run(tmp_path)
    extra = []
    if case == "not-a-run":
        out = tmp_path / "elsewhere"
        out.mkdir()
        (out / "notes.txt").write_text("hello")
    elif case == "version":
        edit_run_json(out, lambda i: i.update(firepbt_version="0.0.1"))
    elif case == "format":
        edit_run_json(out, lambda i: i.update(format=99))
    elif case == "edited":
        edit_run_json(out, lambda i: i["config"].update(steps=800))
    else:
        cfg_path = tmp_path / "exp.toml"
        cfg_path.write_text(toml(BASE))
        extra = ["--config", str(cfg_path), "--set", "algorithm.population=6"]
    before = files(out)
    r = python("-m", "firepbt", "resume", str(out), *extra)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert files(out) == before


def test_resuming_a_run_that_another_process_drives_is_refused(tmp_path):
    out, _ = crashed_run(tmp_path)
    lock = lock_run(out)  # as the live controller holds it
    try:
        before = files(out)
        r = python("-m", "firepbt", "resume", str(out))
        assert r.returncode == 2 and "another firepbt process" in r.stderr, r.stderr
        assert files(out) == before
    finally:
        assert lock is not None
        lock.close()


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    out = tmp_path / "run"
    run(config(), out)
    before = files(out)
    r = python("-m", "firepbt", "resume", str(out))
    assert r.returncode == 0 and "already finished" in r.stdout
    assert files(out) == before


# -- garbage collection, keep-best, journal before effect ------------------------------


@pytest.mark.parametrize("rule", ["highest", "final"])
def test_checkpoints_are_collected_and_keep_best_keeps_the_best_network(tmp_path, rule):
    """Under ``best = "highest"`` the best network's state is in the checkpoints from the
    first result on; under ``"final"`` (the default) only once a member of P_1 has
    reached the budget, i.e. in none of them, and best.json keeps it after the run."""
    out = tmp_path / "run"
    peak = []
    bests = []

    def inspect(event):
        if r.store is not None:
            r.store.wait()  # the checkpoint being written in the background is complete
        store = CheckpointStore(out)
        seqs = store.manifests()
        if not seqs:
            return
        named = set()
        for seq in seqs:
            body = store.read_manifest(seq)
            named |= {store.pack_path(e[0]).name for e in [body["loop"], *body["states"]]}
            bests.append(body["best_state"])
            if body["best_state"] is not None:
                named.add(store.pack_path(body["best_state"][0]).name)
        on_disk = {p.name for p in store.packs.glob("*.bin")}
        assert len(seqs) <= 2 and on_disk <= named
        peak.append(len(on_disk))

    r = Run(config(keep_best_checkpoints=True, best=rule), out, observers=[inspect])
    result = r.execute()
    assert peak and max(peak) <= MAX_AGE + 2
    if rule == "highest":
        assert all(b is not None for b in bests)
    else:
        assert bests and all(b is None for b in bests)
        assert result["best"]["step"] == 400
    best = json.loads((out / "checkpoints/best.json").read_text())
    assert best["best"]["step"] == result["best"]["step"]
    state = pickle.loads((out / "checkpoints" / best["best_state"]).read_bytes())
    assert state["x"] == result["best"]["test"]  # Climb's test() is its x
    assert [p.name for p in (out / "checkpoints/blobs").iterdir()] == [f"{best['sha256']}.pkl"]


def test_every_weight_copy_is_journalled_before_it_happens(tmp_path):
    out = tmp_path / "run"
    seen = []

    class Watching(InProcessExecutor):
        def copy(self, src, dst):
            last = (out / "events.jsonl").read_text().splitlines()[-1]
            seen.append(json.loads(last))
            super().copy(src, dst)

    run(config(), out, executor=Watching())
    assert seen and all(ev["ev"] == "copy" for ev in seen)
    copies = [(ev["src"], ev["dst"]) for ev in read_events(out) if ev["ev"] == "copy"]
    assert [(ev["src"], ev["dst"]) for ev in seen] == copies
