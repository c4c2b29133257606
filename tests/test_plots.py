"""Figures from the journal: extraction functions on a small FIRE run, and ``firepbt plot``."""

from pathlib import Path

import pytest

from firepbt.api import run
from firepbt.config import Config
from firepbt.report.plots import best_curve, best_result, best_schedule, hparam_bands, plot_run
from firepbt.runner.lineage import Lineage

CONFIG = {
    "trainable": "firepbt.tasks.nqm:NQM",
    "direction": "min",
    "steps": 600,
    "eval_interval": 10,
    "ready_interval": 50,
    "args": {"dim": 100, "noise": 0.02},
    "space": {"lr": {"kind": "log_uniform", "low": 0.01, "high": 1.0}},
    "algorithm": {"name": "fire", "subpopulation_size": 4, "evaluators": 3, "max_eval_steps": 100},
}


@pytest.fixture(scope="module")
def fire_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "fire"
    result = run(Config.from_dict(CONFIG), out)
    return out, result


def test_best_from_journal_matches_result(fire_run):
    out, result = fire_run
    best = best_result(out)
    assert best["score"] == result["best"]["score"]
    assert best["step"] == result["best"]["step"]
    assert best_schedule(out) == result["best"]["schedule"]


def test_best_curve_is_monotone(fire_run):
    out, result = fire_run
    x, y = best_curve(out)
    assert (x[1:] > x[:-1]).all() and (y[1:] <= y[:-1]).all()
    assert y[-1] == result["best"]["score"] and x[-1] == 600


def test_hparam_bands(fire_run):
    out, result = fire_run
    data = hparam_bands(out)
    assert data["names"] == ["lr"]
    assert set(data["bands"]["lr"]) <= {0, 1, 2} and {1, 2} <= set(data["bands"]["lr"])
    for band in data["bands"]["lr"].values():
        assert (band["min"] <= band["median"]).all() and (band["median"] <= band["max"]).all()
    assert len(data["successes"]) == result["counts"]["success"]


def test_plot_run_and_cli(fire_run, capsys):
    pytest.importorskip("matplotlib")
    from firepbt.cli import main

    out, _ = fire_run
    paths = plot_run(out)
    assert [p.name for p in paths] == ["hparams.png", "best_score.png", "schedule.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert main(["plot", str(out.parent)]) == 0
    assert "hparams.png" in capsys.readouterr().out
    assert main(["plot", str(out / "plots")]) == 2


def test_lineage_consistent(fire_run):
    from firepbt.runner.journal import read_events

    lin = Lineage.from_events(read_events(fire_run[0]))
    assert lin.nets


def test_every_hyperparameter_gets_a_panel_on_its_kinds_axis(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from firepbt.report import plots

    data = dict(
        CONFIG,
        trainable="toys:Climb",
        direction="max",
        steps=100,
        space={
            "lr": {"kind": "log_uniform", "low": 0.01, "high": 1.0},
            "momentum": {"kind": "uniform", "low": 0.0, "high": 0.99},
            "width": {"kind": "int", "low": 1, "high": 8},
            "opt": {"kind": "choice", "choices": ["sgd", "adam", "rmsprop"]},
        },
        algorithm={"name": "pbt", "population": 4},
    )
    data.pop("args")
    run(Config.from_dict(data), tmp_path / "pbt")
    seen = {}
    save = plots._save

    def spy(fig, path, formats):
        axes = [ax for ax in fig.axes if ax.get_ylabel()]
        seen[Path(path).stem] = (
            [ax.get_ylabel() for ax in axes],
            [ax.get_yscale() for ax in axes],
            [t.get_text() for t in axes[-1].get_yticklabels()],
            [t.get_text() for t in fig.legends[0].get_texts()] if fig.legends else [],
        )
        return save(fig, path, formats)

    monkeypatch.setattr(plots, "_save", spy)
    paths = plot_run(tmp_path / "pbt", formats=("png", "svg"))
    assert [p.name for p in paths] == [
        "hparams.png",
        "hparams.svg",
        "best_score.png",
        "best_score.svg",
        "schedule.png",
        "schedule.svg",
    ]
    for fig in ("hparams", "schedule"):
        labels, scales, ticks, _ = seen[fig]
        assert labels == ["lr", "momentum", "width", "opt"]
        assert scales == ["log", "linear", "linear", "linear"]
        assert ticks == ["sgd", "adam", "rmsprop"]  # a choice: one tick per choice
    legend = seen["hparams"][3]
    assert "population: median" in legend and "population: min–max over members" in legend
    assert not any("P1" in t for t in legend)  # plain PBT has no sub-populations
    import matplotlib.image

    height, width = matplotlib.image.imread(tmp_path / "pbt/plots/hparams.png").shape[:2]
    assert width >= 7 * 150  # 150 dpi


def test_fire_roles_and_markers_are_explained(fire_run, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from firepbt.report import plots

    legends = {}
    save = plots._save

    def spy(fig, path, formats):
        legends[Path(path).stem] = [t.get_text() for t in fig.legends[0].get_texts()]
        return save(fig, path, formats)

    monkeypatch.setattr(plots, "_save", spy)
    out, result = fire_run
    plots.render_hparam_bands(plots.hparam_bands(out), tmp_path / "h.png")
    legend = legends["h"]
    assert {"P1: median", "P2: median", "evaluators: median"} <= set(legend)
    assert "P1: min–max over members" in legend and "best network's schedule" in legend
    if result["counts"]["success"]:
        assert "evaluator success (member's hyperparameters)" in legend
