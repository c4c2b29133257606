"""Every example in examples/ runs, with a tiny budget (the configs as they are, but for
``--set`` overrides of the budget)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from firepbt.api import run
from firepbt.config import load_config

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"
TINY = ["steps=200", "ready_interval=100"]


def test_every_example_config_is_tested_here():
    configs = sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.toml"))
    assert configs == [
        "logging/nqm_logging.toml",
        "ray_cluster/ray_cluster.toml",
        "torch_digits.toml",
    ]


def test_torch_example(tmp_path):
    pytest.importorskip("torch")
    cfg = load_config(EXAMPLES / "torch_digits.toml", ["steps=100", "ready_interval=100"])
    result = run(cfg, tmp_path / "run")
    assert result["best"]["score"] > 0.5
    assert (tmp_path / "run/tensorboard").is_dir()


@pytest.fixture
def logging_env(tmp_path, monkeypatch):
    """W&B offline with its files under tmp_path; the example's MLflow database
    (``sqlite:///mlflow.db``, relative) and artifacts in tmp_path."""
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    home = tmp_path / "wandb-home"
    env = {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DISABLE_GIT": "true",
        "WANDB_ERROR_REPORTING": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **{v: str(home) for v in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")},
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def finished_mlflow_runs(out: Path) -> set[str]:
    from mlflow import MlflowClient

    ids = json.loads((out / "mlflow.json").read_text())
    client = MlflowClient(ids["tracking_uri"])
    return {client.get_run(r).info.status for r in [ids["parent"], *ids["workers"]]}


@pytest.mark.slow
def test_logging_example_config_from_the_command_line(logging_env):
    out = logging_env / "run"
    cmd = [sys.executable, "-m", "firepbt", "run", str(EXAMPLES / "logging/nqm_logging.toml")]
    cmd += ["--out", str(out), "--quiet", *(a for s in TINY for a in ("--set", s))]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (out / "result.json").is_file() and (out / "tensorboard").is_dir()
    ids = json.loads((out / "wandb.json").read_text())
    offline = {p.name.rsplit("-", 1)[1] for p in (out / "wandb").glob("offline-run-*")}
    assert offline == {ids["controller"], *ids["workers"]}
    assert (logging_env / "mlflow.db").is_file()
    assert finished_mlflow_runs(out) == {"FINISHED"}
    assert "callback" not in r.stderr  # no logger failed


@pytest.mark.slow
def test_logging_example_callbacks_script(logging_env):
    out = logging_env / "run"
    script = EXAMPLES / "logging/callbacks.py"
    cmd = [sys.executable, str(script), str(out), *TINY, "log.wandb=false"]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    copies = [e for e in events if e["ev"] == "copy" and e["reason"] in ("exploit", "success")]
    with open(out / "weight_copies.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["step", "reason", "from", "to"] and len(rows) == 1 + len(copies)
    assert [int(r[0]) for r in rows[1:]] == [c["step"] for c in copies]
    results = sum(e["ev"] == "result" for e in events)
    assert f"{results} results" in r.stdout
    assert "best " in r.stdout
    assert not (out / "wandb.json").exists() and finished_mlflow_runs(out) == {"FINISHED"}


@pytest.mark.ray
def test_ray_cluster_example(tmp_path, ray_session):
    cfg = load_config(EXAMPLES / "ray_cluster/ray_cluster.toml", [*TINY, "slots=2"])
    assert cfg.executor == "ray" and cfg.ray.address is None
    result = run(cfg, tmp_path / "run")
    assert result["best"]["score"] is not None
    assert result["counts"]["assign"] > 0
