"""The benchmark pipeline (``python -m benchmarks --quick``) and its report's honesty.

The numbers of the report must be the numbers of the journals: this test reads each
run's ``events.jsonl`` by hand (best score over the ``result`` events, the test score
recorded with it) and ``result.json`` (the replay), and compares them with
``report.json`` and the text of ``report.md``.
"""

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]


def from_journal(run_dir: Path, direction: str) -> dict:
    best = None
    with open(run_dir / "events.jsonl", encoding="utf-8") as fh:
        for line in fh:
            ev = json.loads(line)
            if ev["ev"] != "result" or ev["score"] is None:
                continue
            better = best is None or (
                ev["score"] > best["score"] if direction == "max" else ev["score"] < best["score"]
            )
            if better:
                best = ev
    replay = json.loads((run_dir / "result.json").read_text())["replay"]
    return {
        "best": best["score"],
        "test": best.get("test"),
        "replay": replay["score"],
        "replay_test": replay["test"],
    }


def test_quick_report_matches_the_journals(tmp_path):
    out = tmp_path / "report"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "nqm-noise", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,  # generous: only a hang should ever hit it
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())["benchmarks"]["nqm-noise"]
    text = (out / "report.md").read_text()
    assert set(report["methods"]) == {"random", "pbt", "fire"}
    for method, m in report["methods"].items():
        per_seed = {}
        for seed, nums in m["runs"].items():
            run_dir = out / "nqm-noise" / f"{method}-seed{seed}"
            mine = from_journal(run_dir, "min")
            per_seed[seed] = mine
            for key, value in mine.items():
                assert nums[key] == pytest.approx(value, rel=0, abs=0), (method, seed, key)
        for key in ("best", "test", "replay", "replay_test"):
            values = [v[key] for v in per_seed.values()]
            mean, std = statistics.fmean(values), statistics.stdev(values)
            assert math.isclose(m[key]["mean"], mean, rel_tol=1e-12)
            assert math.isclose(m[key]["std"], std, rel_tol=1e-12)
            assert f"{mean:.4f} ± {std:.4f}" in text
    for fig in ("fig1-schedules", "fig4a-fire-seed0", "fig4b-best"):
        assert (out / f"nqm-noise-{fig}.png").stat().st_size > 1000
    assert report["references"]["piecewise"]["score"] < report["references"]["constant"]["score"]
