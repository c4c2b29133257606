"""The command line, run in real subprocesses: exit codes and one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

CONFIG = """
trainable = "toys:Climb"
direction = "max"
seed = 0
steps = 200
eval_interval = 10
ready_interval = 50
[space.lr]
kind = "log_uniform"
low = 0.001
high = 1.0
[algorithm]
name = "fire"
subpopulation_size = 4
evaluators = 3
max_eval_steps = 100
"""


def firepbt(*args, cwd):
    # the checkout's src first: an installed firepbt elsewhere must not be the one tested
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)]))
    return subprocess.run(
        [sys.executable, "-m", "firepbt", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # generous: only a hang should ever hit it
    )


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "exp.toml"
    p.write_text(CONFIG)
    return p


def test_run_show_replay(tmp_path, cfg):
    out = tmp_path / "run"
    r = firepbt(
        "run",
        str(cfg),
        "--out",
        str(out),
        "--seed",
        "2",
        "--set",
        "mode=async",
        "--quiet",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["seed"] == 2 and result["mode"] == "async" and result["algorithm"] == "fire"
    assert {"score", "test", "member", "step", "schedule"} <= set(result["best"])
    assert "best schedule" in r.stdout
    s = firepbt("show", str(out), cwd=tmp_path)
    assert s.returncode == 0 and "fire" in s.stdout and "best Q" in s.stdout
    rp = firepbt("replay", str(out), cwd=tmp_path)
    assert rp.returncode == 0, rp.stderr
    assert json.loads(rp.stdout)["score"] == pytest.approx(result["replay"]["score"])


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c.replace('"toys:Climb"', '"nowhere:Net"'),
            "trainable: cannot import module 'nowhere'",
        ),
        (lambda c: c.replace('"toys:Climb"', '"toys:NoEvaluate"'), "missing method(s) evaluate"),
        (
            lambda c: c.replace(
                "subpopulation_size = 4", "subpopulation_size = 4\nsubpopulations = 1"
            ),
            "algorithm.subpopulations",
        ),
        (lambda c: c.replace("evaluators = 3", "evaluators = 0"), "algorithm.evaluators"),
        (lambda c: c.replace("steps = 200", ""), "steps: required"),
        (lambda c: c + "\n[nonsense", "not valid TOML"),
        (lambda c: c + "\n[args]\nwidth = 3\n", "args: building the trainable toys:Climb"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_trains(tmp_path, cfg, edit, message):
    cfg.write_text(edit(CONFIG))
    out = tmp_path / "run"
    r = firepbt("run", str(cfg), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_show_refuses_a_directory_that_is_not_a_run(tmp_path):
    r = firepbt("show", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and "not a finished firepbt run" in r.stderr


def test_demo_runs_the_three_bundled_configs(tmp_path):
    r = firepbt(
        "demo",
        "--out",
        "demo",
        "--set",
        "steps=400",
        "--set",
        "args.dim=1000",
        "--quiet",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    for name, algo in [("nqm-random", "random"), ("nqm-pbt", "pbt"), ("nqm-fire", "fire")]:
        result = json.loads((tmp_path / "demo" / name / "result.json").read_text())
        assert result["algorithm"] == algo and result["workers"] == 22 and result["steps"] == 400
        assert name in r.stdout
    assert "replay Q" in r.stdout


def test_configs_lists_the_bundled_configs(tmp_path):
    r = firepbt("configs", cwd=tmp_path)
    assert r.returncode == 0 and {"nqm-fire", "nqm-pbt", "nqm-random"} <= set(r.stdout.split())


def test_progress_lines_when_not_a_terminal_and_quiet_silences_them(tmp_path, cfg):
    r = firepbt("run", str(cfg), "--out", str(tmp_path / "a"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    progress = [line for line in r.stdout.splitlines() if line.startswith("[")]
    assert progress and "step 200/200 (0 left)" in progress[-1]
    assert "\x1b[" not in r.stdout  # plain text: no terminal control codes in a pipe
    q = firepbt("run", str(cfg), "--out", str(tmp_path / "b"), "--quiet", cwd=tmp_path)
    assert q.returncode == 0 and "left)" not in q.stdout
