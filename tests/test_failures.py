"""Errors in the user's code: shown once with their traceback, a bug stops the run,
divergence does not (issue 9; SPEC "Bad scores")."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from firepbt.api import run
from firepbt.config import Config
from firepbt.core.errors import ConfigError, UserCodeError
from firepbt.report.notices import Notices
from firepbt.runner.journal import read_events

TESTS = Path(__file__).parent
BASE = {
    "trainable": "toys:Climb",
    "steps": 100,
    "eval_interval": 10,
    "ready_interval": 20,
    "space": {"lr": {"kind": "log_uniform", "low": 0.01, "high": 1.0}},
    "algorithm": {"name": "pbt", "population": 4},
}


def config(**kw):
    return Config.from_dict({**BASE, **kw})


def events(out, kind):
    return [e for e in read_events(out) if e["ev"] == kind]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_bug_at_the_first_task_stops_the_run_with_its_traceback(tmp_path, mode):
    shown = io.StringIO()
    with pytest.raises(UserCodeError, match="every network failed at its first task") as info:
        run(config(trainable="toys:Buggy", mode=mode), tmp_path, observers=[Notices(shown)])
    assert "KeyError: 'learning_rate'" in str(info.value)
    assert 'toys.py", line' in info.value.traceback and "learning_rate" in info.value.traceback
    assert not (tmp_path / "result.json").exists()
    (err,) = events(tmp_path, "user_error")  # one distinct error, journalled once
    assert err["where"].startswith(str(TESTS / "toys.py") + ":")
    (abort,) = events(tmp_path, "abort")
    assert abort["reason"] == "user_error" and abort["traceback"] == err["traceback"]
    text = shown.getvalue()
    assert text.count("Traceback (most recent call last)") == 1
    assert "KeyError: 'learning_rate'" in text and err["where"] in text


def test_an_evaluate_that_returns_nothing_is_named(tmp_path):
    with pytest.raises(UserCodeError, match=r"NoReturn.evaluate\(\) returned None"):
        run(config(trainable="toys:NoReturn"), tmp_path, notices=False)
    (err,) = events(tmp_path, "user_error")
    assert err["where"].startswith(str(TESTS / "toys.py"))


def test_a_failure_after_successful_training_is_divergence(tmp_path):
    """LateBug raises after 30 steps for lr > 0.1: the run goes on, counts the error."""
    shown = io.StringIO()
    result = run(config(trainable="toys:LateBug"), tmp_path, observers=[Notices(shown)])
    assert result["best"] is not None
    (err,) = result["errors"]
    assert err["error"] == "ZeroDivisionError: division by zero"
    assert err["where"].startswith(str(TESTS / "toys.py"))
    failed = [e for e in events(tmp_path, "result") if e.get("error_id") == err["id"]]
    assert err["count"] == len(failed) > 1
    assert result["counts"]["diverged"] >= len(failed)
    assert shown.getvalue().count("Traceback (most recent call last)") == 1  # shown once
    assert not events(tmp_path, "abort")


def test_non_finite_scores_everywhere_are_divergence_not_a_bug(tmp_path):
    result = run(config(trainable="toys:AlwaysNaN"), tmp_path, notices=False)
    assert result["best"] is None and result["errors"] == []
    assert result["counts"]["diverged"] == 4 * 10


def cli_config(tmp_path, trainable, extra=""):
    """BASE as a TOML file with another trainable (and ``extra`` top-level lines), and the
    environment for ``python -m firepbt`` to find firepbt and the toys."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)]))
    cfg = tmp_path / "exp.toml"
    lines = [f"{k} = {json.dumps(v)}" for k, v in BASE.items() if not isinstance(v, dict)]
    cfg.write_text(
        "\n".join(lines).replace('"toys:Climb"', json.dumps(trainable))
        + f'\n{extra}[space.lr]\nkind = "log_uniform"\nlow = 0.01\nhigh = 1.0\n'
        + '[algorithm]\nname = "pbt"\npopulation = 4\n'
    )
    return cfg, env


def test_cli_exit_1_with_the_traceback_and_show_counts_errors(tmp_path):
    cfg, env = cli_config(tmp_path, "toys:Buggy")

    def firepbt(*args):
        return subprocess.run(
            [sys.executable, "-m", "firepbt", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,  # generous: only a hang should ever hit it
        )

    r = firepbt("run", str(cfg), "--out", str(tmp_path / "bug"))
    assert r.returncode == 1, r.stderr
    assert "every network failed at its first task" in r.stderr
    assert "Traceback (most recent call last)" in r.stderr
    assert 'toys.py", line' in r.stderr and 'hparams["learning_rate"]' in r.stderr
    r = firepbt("show", str(tmp_path / "bug"))  # a stopped run: its errors, from the journal
    assert r.returncode == 0, r.stderr
    assert "not finished; every network failed at its first task" in r.stdout
    assert "4x  KeyError: 'learning_rate'  at " in r.stdout
    # a run with errors that is not a bug: show lists them, with counts
    r = firepbt(
        "run", str(cfg), "--out", str(tmp_path / "late"), "--set", 'trainable="toys:LateBug"'
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("ZeroDivisionError: division by zero") == 2  # message + traceback
    r = firepbt("show", str(tmp_path / "late"))
    assert r.returncode == 0, r.stderr
    count = json.loads((tmp_path / "late/result.json").read_text())["errors"][0]["count"]
    assert f"{count}x  ZeroDivisionError: division by zero  at {TESTS / 'toys.py'}" in r.stdout


def test_import_time_errors_show_the_location(tmp_path):
    (tmp_path / "broken.py").write_text("x = 1\ny = x / 0\n")
    (tmp_path / "typo.py").write_text("def f(:\n")
    cfg = Config.from_dict({**BASE, "trainable": "broken:Net"}, search_path=str(tmp_path))
    msg = r"cannot import module 'broken' \(ZeroDivisionError: division by zero at .*broken.py:2\)"
    with pytest.raises(ConfigError, match=msg):
        run(cfg, tmp_path / "out")
    cfg = Config.from_dict({**BASE, "trainable": "typo:Net"}, search_path=str(tmp_path))
    with pytest.raises(ConfigError, match=r"typo.py:1\)"):
        run(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


KINDS = ["inprocess", "processes", pytest.param("ray", marks=pytest.mark.ray)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_bug_in_test_stops_the_run_with_its_traceback(tmp_path, kind, ray_session):
    """test() raising on the best network used to leave its test score missing, silently
    (the process and Ray executors swallowed it): it is a bug, shown and journalled."""
    cfg = config(trainable="toys:TestBug", executor=kind, slots=2)
    with pytest.raises(UserCodeError, match=r"test\(\) raised AttributeError") as info:
        run(cfg, tmp_path, notices=False)
    assert not info.value.shown  # no notice printed it: the command line prints it
    assert 'toys.py", line' in info.value.traceback and "self.test_weight" in info.value.traceback
    assert str(TESTS / "toys.py") + ":" in str(info.value)
    (abort,) = events(tmp_path, "abort")
    assert (abort["reason"], abort["during"]) == ("user_error", "test")
    assert abort["traceback"] == info.value.traceback and abort["worker"] is not None
    assert not events(tmp_path, "end") and not (tmp_path / "result.json").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_bug_in_the_replays_test_stops_the_run(tmp_path, kind, ray_session):
    from firepbt.runner.setup import seeds_for

    _, _, replay_seed = seeds_for(0, 4)
    cfg = config(
        trainable="toys:TestBug", args={"replay_seed": replay_seed}, executor=kind, slots=2
    )
    with pytest.raises(UserCodeError, match=r"test\(\) raised AttributeError") as info:
        run(cfg, tmp_path, notices=False)
    assert "self.test_weight" in info.value.traceback
    (abort,) = events(tmp_path, "abort")
    assert (abort["during"], abort["worker"]) == ("replay", None)
    assert not (tmp_path / "result.json").exists()
    kinds = [e["ev"] for e in read_events(tmp_path)]
    # training had finished (the tests during the run were fine); `firepbt resume` replays
    assert kinds[-2:] == ["end", "abort"]


def test_cli_prints_a_test_bugs_traceback_once(tmp_path):
    cfg, env = cli_config(tmp_path, "toys:TestBug", 'executor = "processes"\n')
    r = subprocess.run(
        [sys.executable, "-m", "firepbt", "run", str(cfg), "--out", str(tmp_path / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # generous: only a hang should ever hit it
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("Traceback (most recent call last)") == 1
    assert "self.test_weight" in r.stderr
    assert "firepbt: error: the trainable's test() raised AttributeError" in r.stderr
    assert r.stderr.index("Traceback") < r.stderr.index("firepbt: error:")
    assert f"once it is fixed, continue the run with: firepbt resume {tmp_path / 'run'}" in r.stderr
