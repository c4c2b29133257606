"""What the console tells (issue 9): resume position and best, the resume command after an
interruption, no temporary directories left behind, the missing ``__main__`` guard,
``firepbt.load_best``, ``firepbt compare`` and ``plot --format``."""

import fcntl
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_resume import Crash, crash_at  # one crash-at-the-k-th-event observer

import firepbt
from firepbt.api import resume, run
from firepbt.config import Config
from firepbt.core.errors import ConfigError
from firepbt.core.trainable import TrainableSpec
from firepbt.executors.processes import OWNER_FILE, ProcessExecutor, remove_stale_state_dirs
from firepbt.report.live import PlainProgress
from firepbt.report.notices import Notices
from firepbt.runner.journal import read_events

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(TESTS)]))
BASE = {
    "trainable": "toys:Climb",
    "direction": "min",  # the live view once showed the worst score after a resume
    "steps": 400,
    "eval_interval": 10,
    "ready_interval": 50,
    "space": {"lr": {"kind": "log_uniform", "low": 0.001, "high": 1.0}},
    "algorithm": {"name": "pbt", "population": 4},
}
TOML = """
trainable = "toys:SlowClimb"
steps = 4000
eval_interval = 10
ready_interval = 50
[args]
delay = 0.01
[space.lr]
kind = "log_uniform"
low = 0.001
high = 1.0
[algorithm]
name = "pbt"
population = 4
"""


def test_resume_says_where_it_continues_with_the_right_best(tmp_path):
    # the live view shows the best reading so far, which is the run's best network
    # under the paper's rule (under "final", the default, that is known at the end)
    cfg = Config.from_dict({**BASE, "best": "highest"})
    with pytest.raises(Crash):
        run(cfg, tmp_path, observers=[crash_at(150)], notices=False)
    lines, said = io.StringIO(), io.StringIO()
    view = PlainProgress(lines, min_interval=0)
    result = resume(tmp_path, observers=[view], notices=False)
    assert result is not None
    events = list(read_events(tmp_path))
    i = next(k for k, e in enumerate(events) if e["ev"] == "resume")
    before = [e["score"] for e in events[:i] if e["ev"] == "result" and e["score"] is not None]
    ev = events[i]
    assert ev["best"] == min(before) and ev["step"] > 0 and ev["steps"] == 400
    Notices(said)(ev)
    assert said.getvalue() == (
        f"firepbt: resumed from checkpoint {ev['checkpoint']}, at step {ev['step']} of 400; "
        f"best so far {ev['best']:.4g}\n"
    )
    printed = lines.getvalue().splitlines()
    assert printed and "step 0/0" not in printed[0]
    assert f"step 400/400 (0 left)  best {result['best']['score']:.4g}" in printed[-1]
    assert view.view.best[0] == result["best"]["score"]  # min, not max, after the resume


def firepbt_cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "firepbt", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=1800,  # generous: only a hang should ever hit it
        **kw,
    )


def wait_for(path: Path, proc) -> None:
    """Poll (no deadline: the machine may be slow) until ``path`` exists."""
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)


@pytest.mark.parametrize("executor", ["inprocess", "processes"])
def test_sigterm_says_how_to_resume_and_leaves_no_temporary_directory(tmp_path, executor):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'executor = "{executor}"\nslots = 2\n' + TOML)
    out = tmp_path / "run"
    states = tmp_path / "tmp"
    states.mkdir()
    env = dict(ENV, TMPDIR=str(states))
    proc = subprocess.Popen(
        [sys.executable, "-m", "firepbt", "run", str(cfg), "--out", str(out), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(out / "checkpoints", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=1800)
    assert proc.returncode == 143, err
    assert f"firepbt: terminated; continue the run with: firepbt resume {out}" in err
    assert list(states.iterdir()) == []  # the process executor's state directory is gone
    r = firepbt_cli("run", str(cfg), "--out", str(out))
    assert r.returncode == 2
    assert f"already holds an unfinished run: continue it with `firepbt resume {out}`" in r.stderr
    assert not (out / "result.json").exists()


def test_sigkill_leftovers_are_removed_at_the_next_start(tmp_path):
    stale, alive, foreign = (tmp_path / f"firepbt-states-{n}" for n in ("a", "b", "c"))
    for d in (stale, alive, foreign):
        d.mkdir()
        (d / "0.pkl").write_bytes(b"x")
    (stale / OWNER_FILE).write_bytes(b"")  # its controller was killed: nobody holds the lock
    (alive / OWNER_FILE).write_bytes(b"")
    with open(alive / OWNER_FILE, "rb") as held:  # a live controller holds its lock
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert remove_stale_state_dirs(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and foreign.exists()  # no owner file: kept
    # and a starting process executor does it itself
    stale.mkdir()
    (stale / OWNER_FILE).write_bytes(b"")
    ex = ProcessExecutor(1, state_dir=tmp_path)
    ex.start(TrainableSpec("toys:Climb"), [0])
    try:
        assert not stale.exists() and ex.dir is not None and ex.dir.exists()
    finally:
        ex.close()


def test_a_script_without_the_main_guard_is_told_to_add_it(tmp_path):
    script = tmp_path / "train.py"
    data = dict(BASE, executor="processes", slots=1, steps=20, ready_interval=10)
    script.write_text(
        "import firepbt\n"
        f"config = firepbt.Config.from_dict({data!r})\n"
        f"firepbt.run(config, {str(tmp_path / 'out')!r})\n"
    )
    r = subprocess.run(
        [sys.executable, str(script)], env=ENV, capture_output=True, text=True, timeout=1800
    )
    assert r.returncode != 0
    assert 'must sit under `if __name__ == "__main__":`' in r.stderr
    assert "add that guard: the worker processes import the script" in r.stderr


def test_load_best_returns_the_best_network(tmp_path):
    cfg = Config.from_dict(dict(BASE, direction="max", keep_best_checkpoints=True))
    result = run(cfg, tmp_path / "kept", notices=False)
    net = firepbt.load_best(tmp_path / "kept")
    assert type(net).__name__ == "Climb"
    assert net.evaluate() == result["best"]["score"]  # Climb scores its weights exactly
    run(Config.from_dict(BASE), tmp_path / "not-kept", notices=False)
    with pytest.raises(ConfigError, match="keep_best_checkpoints = true"):
        firepbt.load_best(tmp_path / "not-kept")


def test_compare_groups_runs_by_algorithm_and_plot_formats(tmp_path):
    pytest.importorskip("matplotlib")
    for algo in ({"name": "random", "population": 4}, {"name": "pbt", "population": 4}):
        for seed in (0, 1):
            data = dict(BASE, algorithm=algo, seed=seed, steps=100)
            run(Config.from_dict(data), tmp_path / "runs" / f"{algo['name']}-{seed}", notices=False)
    r = firepbt_cli(
        "compare", str(tmp_path / "runs"), "--out", str(tmp_path / "cmp"), "--format", "png,svg"
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["algorithm", "runs", "best"]
    assert lines[2].startswith("random search  2") and lines[3].startswith("PBT            2")
    results = [
        json.loads((tmp_path / "runs" / f"pbt-{s}" / "result.json").read_text()) for s in (0, 1)
    ]
    scores = [res["best"]["score"] for res in results]
    mean = sum(scores) / 2
    assert f"{mean:.4g} ± " in lines[3]
    assert (tmp_path / "cmp/compare.png").stat().st_size > 10_000
    assert (tmp_path / "cmp/compare.svg").read_text().startswith("<?xml")
    r = firepbt_cli("plot", str(tmp_path / "runs/pbt-0"), "--format", "pdf")
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (tmp_path / "runs/pbt-0/plots").iterdir()} == {
        "hparams.pdf",
        "best_score.pdf",
        "schedule.pdf",
    }
    r = firepbt_cli("plot", str(tmp_path / "runs"), "--format", "gif")
    assert r.returncode == 2 and "--format: expected some of png,svg,pdf" in r.stderr
