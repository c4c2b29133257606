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


def _better(ev: dict, other: dict | None, direction: str) -> bool:
    if other is None:
        return True
    return ev["score"] > other["score"] if direction == "max" else ev["score"] < other["score"]


def from_journal(run_dir: Path, direction: str) -> dict:
    """The best network as the run's ``best`` rule defines it (README "Configuration
    reference"), read from the journal alone."""
    best = None
    fallback = None  # best = "final": P_1's highest reading, if P_1 ends diverged
    with open(run_dir / "events.jsonl", encoding="utf-8") as fh:
        for line in fh:
            ev = json.loads(line)
            if ev["ev"] == "start":
                rule, steps, roles = ev["config"]["best"], ev["config"]["steps"], ev["roles"]
            if ev["ev"] != "result" or ev["score"] is None:
                continue
            p1 = roles[ev["worker"]] == ["member", 1]
            if p1 and _better(ev, fallback, direction):
                fallback = ev
            eligible = rule == "highest" or (p1 and ev["step"] >= steps)
            if eligible and _better(ev, best, direction):
                best = ev
    best = best if best is not None else fallback
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


def bench(args, tmp_path=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--only", "nqm-nope"], "unknown benchmark(s) nqm-nope"),
        (["--seeds", "0-x"], "--seeds: expected e.g. 0-9"),
        (["--seeds", "5-2"], "--seeds: empty range '5-2'"),
        (["--variants", "turbo"], "unknown variant(s) turbo"),
        (["--only", "nqm-noise", "--methods", "fire@reseed"], "unknown method(s) fire@reseed"),
    ],
)
def test_bad_benchmark_seed_list_variant_or_method_is_one_line_exit_2(tmp_path, args, message):
    out = tmp_path / "never"
    proc = bench([*args, "--quick", "--out", str(out)])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert not out.exists()


def test_quick_seed_sweep_reports_the_distribution_and_resumes(tmp_path):
    out = tmp_path / "sweep"
    args = ["--quick", "--only", "nqm-noise", "--seeds", "0-2", "--methods", "random", "pbt",
            "fire@reseed", "--variants", "reseed", "--out", str(out)]  # fmt: skip
    proc = bench(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())["benchmarks"]["nqm-noise"]
    assert set(report["methods"]) == {"random", "pbt", "fire@reseed"}
    cfg = json.loads((out / "nqm-noise" / "fire@reseed-seed1" / "result.json").read_text())
    algo = cfg["config"]["algorithm"]
    assert algo["reseed_after"] == 3 * algo["max_eval_steps"] and algo["eval_patience"] == 1.0
    rows = report["sweep"]
    vals = {m: [x["replay_test"] for x in report["methods"][m]["runs"].values()] for m in rows}
    for m, v in vals.items():
        assert rows[m]["n"] == 3
        assert rows[m]["mean"] == pytest.approx(statistics.fmean(v))
        assert rows[m]["median"] == pytest.approx(statistics.median(v))
        assert rows[m]["worst"] == max(v)  # minimised
    fire = report["methods"]["fire@reseed"]["runs"]
    pbt = report["methods"]["pbt"]["runs"]
    wins = sum(fire[s]["replay_test"] < pbt[s]["replay_test"] for s in fire)
    assert rows["fire@reseed"]["beats_pbt"] == pytest.approx(wins / 3)
    assert "| FIRE PBT [reseed] | 3 |" in (out / "report.md").read_text()
    assert (out / "nqm-noise-seeds.png").stat().st_size > 1000
    # resume: a finished run is not run again (its journal is untouched); a missing one is
    journal = out / "nqm-noise" / "pbt-seed0" / "events.jsonl"
    before = journal.stat().st_mtime_ns
    gone = out / "nqm-noise" / "random-seed2"
    for f in gone.iterdir():
        f.unlink()
    proc = bench(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert journal.stat().st_mtime_ns == before
    assert (gone / "result.json").exists()


@pytest.mark.parametrize("name", ["rl-cartpole22", "rl-acrobot22"])
def test_quick_rl_benchmark_replays_on_fresh_seeds_and_draws_figure_5(tmp_path, name):
    out = tmp_path / "rl"
    proc = bench(["--quick", "--only", name, "--methods", "pbt", "fire", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = json.loads((out / name / "fire-seed0" / "result.json").read_text())
    algo = cfg["config"]["algorithm"]
    assert algo["min_steps_before_eval"] == [5] and algo["subpopulations"] == 2
    if name == "rl-acrobot22":
        assert cfg["config"]["args"]["env"] == "Acrobot-v1"
    report = json.loads((out / "report.json").read_text())["benchmarks"][name]
    for method in ("pbt", "fire"):
        reps = json.loads((out / name / f"{method}-seed0" / "replays.json").read_text())
        assert len(reps["tests"]) == len(reps["seeds"]) == 24 and reps["episodes"] == 32
        assert reps["mean"] == pytest.approx(statistics.fmean(reps["tests"]))
        assert len(reps["sampled"]) == 24
        assert reps["sampled_mean"] == pytest.approx(statistics.fmean(reps["sampled"]))
        assert report["methods"][method]["runs"]["0"]["replays"] == reps
        # the seed sweep ranks by the 24-seed replay, not the run's own one-seed replay
        assert report["sweep"][method]["mean"] == reps["sampled_mean"]
    assert "| sampled return, 24-seed replay |" in (out / "report.md").read_text()
    assert (out / f"{name}-fig5-return.png").stat().st_size > 1000
    assert (
        "Replays of each run's best schedule on 24 fresh seeds" in (out / "report.md").read_text()
    )


def test_quick_lqr_benchmark_replays_by_exact_expected_return(tmp_path):
    """rl-lqr22: the paper's RL shape on the noisy LQR; each replay is the replayed
    policy's exact expected return, one per fresh seed, and Figure 5 is drawn."""
    from firepbt.tasks.lqr import LQRPolicyGradient

    out = tmp_path / "rl"
    proc = bench(["--quick", "--only", "rl-lqr22", "--methods", "pbt", "fire", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = out / "rl-lqr22" / "fire-seed0"
    cfg = json.loads((run / "result.json").read_text())["config"]
    assert cfg["trainable"] == "firepbt.tasks.lqr:LQRPolicyGradient"
    assert cfg["algorithm"]["min_steps_before_eval"] == [25]
    reps = json.loads((run / "replays.json").read_text())
    assert len(reps["expected"]) == len(reps["seeds"]) == 24
    assert reps["mean"] == pytest.approx(statistics.fmean(reps["expected"]))
    report = json.loads((out / "report.json").read_text())["benchmarks"]["rl-lqr22"]
    assert report["sweep"]["fire"]["mean"] == reps["mean"]  # the sweep's score: the replays
    # the first replay seed, trained along the run's best schedule by hand: the same value
    from firepbt.report.plots import best_schedule

    net = LQRPolicyGradient(reps["seeds"][0])
    for seg in best_schedule(run):
        for _ in range(0, seg["end"] - seg["start"], cfg["eval_interval"]):
            net.train(cfg["eval_interval"], seg["hparams"])
    assert net.test() == reps["expected"][0]
    assert (out / "rl-lqr22-fig5-return.png").stat().st_size > 1000
    assert "exact expected return" in (out / "report.md").read_text()


def test_variant_names_are_safe_in_run_directory_names():
    """A run directory is named ``fire@<variant>-seed<N>``: a "/" in a variant name would
    make a subdirectory (it happened once during the issue-11 sweeps)."""
    import re

    from benchmarks import variants

    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", name) for name in variants.VARIANTS)


def test_nqm_diagnose_recomputes_the_replay_and_splits_at_the_parent_lineage(tmp_path):
    """benchmarks/nqm_diagnose.py: the schedule as found gives the run's replay loss
    exactly; rates after the transfer (P_1's phase) are never scaled; no runs: exit 2."""
    out = tmp_path / "sweep"
    args = ["--quick", "--only", "nqm-noise", "--seeds", "0,1", "--methods", "fire@paper",
            "--variants", "paper", "--out", str(out), "--no-report"]  # fmt: skip
    proc = bench(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = tmp_path / "diag.json"
    cmd = [sys.executable, "-m", "benchmarks.nqm_diagnose", "--out", str(out), "--method",
           "fire@paper", "--only", "nqm-noise", "--results", str(results)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(results.read_text())["benchmarks"]["nqm-noise"]["runs"]
    assert len(runs) == 2
    for r in runs.values():
        assert r["as_found"] == pytest.approx(r["replay_test"], rel=1e-12)
        if r["transfer_step"] is None:  # no parent phase: nothing to scale
            assert set(r["scaled"].values()) == {r["as_found"]}
        for f in r["scaled"]:  # scaling only the first or second half of it, or all
            if r["scaled_first_half"][f] == r["as_found"]:
                assert r["scaled"][f] == r["scaled_second_half"][f]
    proc = subprocess.run([*cmd[:4], str(tmp_path / "empty"), *cmd[5:]], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "no finished fire@paper runs" in proc.stderr


def test_a_common_variant_runs_the_baselines_too_and_paired_compares_seed_by_seed(tmp_path):
    """``--variants strat`` (init_sampling, a setting every algorithm takes) adds
    ``random@strat`` and ``pbt@strat`` as well as ``fire@strat``; ``benchmarks/paired.py``
    gives the mean of the per-seed differences of the replay scores; a bad seed list
    is one line and exit 2."""
    out = tmp_path / "sweep"
    args = ["--quick", "--only", "nqm-noise", "--seeds", "0,1", "--variants", "paper", "strat",
            "--methods", "random", "random@strat", "fire@paper", "fire@strat",
            "--out", str(out), "--no-report"]  # fmt: skip
    proc = bench(args)
    assert proc.returncode == 0, proc.stderr[-3000:]

    def result(method, seed):
        return json.loads((out / "nqm-noise" / f"{method}-seed{seed}" / "result.json").read_text())

    assert result("random@strat", 0)["config"]["algorithm"]["init_sampling"] == "stratified"
    assert result("random", 0)["config"]["algorithm"]["init_sampling"] == "iid"
    assert result("fire@paper", 0)["config"]["algorithm"]["init_sampling"] == "iid"
    assert result("fire@strat", 0)["config"]["algorithm"]["init_sampling"] == "stratified"
    cmd = [sys.executable, "-m", "benchmarks.paired", "--out", str(out), "--base", "fire@paper",
           "--methods", "fire@strat", "--only", "nqm-noise"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    diffs = [result("fire@strat", s)["replay"]["test"] - result("fire@paper", s)["replay"]["test"]
             for s in (0, 1)]  # fmt: skip
    assert f"paired {statistics.fmean(diffs):+.4f} ± " in proc.stdout, proc.stdout
    proc = subprocess.run([*cmd, "--exclude", "1-0"], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr


def test_a_top_level_variant_sets_the_config_not_the_algorithm_table(tmp_path):
    """``--variants highest`` and ``final`` (``best``, a top-level setting every
    algorithm takes) reach the config's top level of ``pbt@highest`` and ``fire@final``
    and leave their [algorithm] tables alone; ``fire@paper`` has the paper's rule; under
    ``final`` (the default) the run's best is a final network of P_1."""
    out = tmp_path / "sweep"
    args = ["--quick", "--only", "nqm-noise", "--seeds", "0", "--variants", "highest", "final",
            "paper", "--methods", "pbt", "pbt@highest", "fire@final", "fire@paper",
            "--out", str(out), "--no-report"]  # fmt: skip
    proc = bench(args)
    assert proc.returncode == 0, proc.stderr[-3000:]

    def result(method):
        return json.loads((out / "nqm-noise" / f"{method}-seed0" / "result.json").read_text())

    final, high, fire = result("pbt"), result("pbt@highest"), result("fire@final")
    assert final["config"]["best"] == "final" and high["config"]["best"] == "highest"
    assert fire["config"]["best"] == "final" and "best" not in fire["config"]["algorithm"]
    assert result("fire@paper")["config"]["best"] == "highest"
    assert high["config"]["algorithm"] == final["config"]["algorithm"]
    for r in (final, fire):
        assert r["best"]["step"] == r["steps"] and r["best"]["subpopulation"] == 1


def test_lqr_benchmarks_have_the_papers_rl_shapes():
    """rl-lqr22 (2 x 8 + 6, as the other RL benchmarks) and rl-lqr50 (the paper's RL
    population: 2 x 18 + 14); equal compute for the baselines; P_2 waits 1/6 of training
    before its first evaluation and an evaluation lasts at most 1/6."""
    from benchmarks.common import fire_workers
    from benchmarks.rl import benchmarks

    got = {b.name: b for b in benchmarks(quick=False) if b.name.startswith("rl-lqr")}
    assert sorted(got) == ["rl-lqr22", "rl-lqr50"]
    for name, (n, sub, ev) in {"rl-lqr22": (22, 8, 6), "rl-lqr50": (50, 18, 14)}.items():
        fire = got[name].methods["fire"]["algorithm"]
        assert (fire["subpopulations"], fire["subpopulation_size"], fire["evaluators"]) == (
            2,
            sub,
            ev,
        )
        assert fire_workers(fire) == n
        assert got[name].methods["pbt"]["algorithm"]["population"] == n
        assert got[name].methods["random"]["algorithm"]["population"] == n
        steps = got[name].methods["fire"]["steps"]
        assert (
            fire["min_steps_before_eval"] == [steps // 6] and fire["max_eval_steps"] == steps // 6
        )


def test_parents_reads_the_parent_subpopulations_from_the_journal(tmp_path):
    """``benchmarks/parents.py`` (the ninth pass's stiff diagnosis): its counts match the
    journal read here independently; a method with no finished run is one line, exit 2."""
    out = tmp_path / "sweep"
    method = "fire@strat+greedys+final"
    args = ["--quick", "--only", "stiff", "--seeds", "0", "--variants", "strat+greedys+final",
            "--methods", method, "--out", str(out), "--no-report"]  # fmt: skip
    proc = bench(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in (out / "stiff" / f"{method}-seed0" / "events.jsonl")
              .read_text().splitlines()]  # fmt: skip
    roles = events[0]["roles"]
    cross = sum(
        1
        for e in events
        if e["ev"] == "copy" and e["reason"] == "exploit"
        and roles[e["src"]][1] != roles[e["dst"]][1]
    )  # fmt: skip
    last = {e["worker"]: e["hparams"]["lr"] for e in events if e["ev"] == "result"}
    p2 = statistics.median(last[w] for w, (r, sp) in enumerate(roles) if r == "member" and sp == 2)
    cmd = [sys.executable, "-m", "benchmarks.parents", "--out", str(out), "--only", "stiff",
           "--methods", method]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"cross-population exploit copies per run: {cross:.1f}" in proc.stdout
    assert f"P_2 {p2:.3g};" in proc.stdout, proc.stdout
    proc = subprocess.run([*cmd[:-1], "fire@paper"], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr


def test_learning_reads_the_held_out_best_effort_from_the_journal(tmp_path):
    """``benchmarks/learning.py`` (the tenth pass's "learns faster" measure): the pick at
    each round is the member with the highest Q, its value that member's next reading,
    as read here independently by step; the paired table and the figure are written; a
    method with no finished run is one line, exit 2."""
    from benchmarks.learning import held_out_curve

    out = tmp_path / "sweep"
    args = ["--quick", "--only", "stiff", "--seeds", "0", "--methods", "pbt", "random",
            "--out", str(out), "--no-report"]  # fmt: skip
    proc = bench(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = out / "stiff" / "pbt-seed0"
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    by_step: dict[int, dict[int, float]] = {}
    for e in events:
        if e["ev"] == "result":
            by_step.setdefault(e["step"], {})[e["worker"]] = e["score"]
    steps = sorted(by_step)
    floor = min(q for t in steps for q in by_step[t].values() if q is not None)
    expect, diverged = [], 0
    for t, nxt in zip(steps, steps[1:], strict=False):
        now = {w: q for w, q in by_step[t].items() if q is not None}
        pick = max(now, key=lambda w: (now[w], -w))
        expect.append(floor if by_step[nxt][pick] is None else by_step[nxt][pick])
        diverged += sum(q is None for q in by_step[t].values())
    got = held_out_curve(run)
    assert got == expect and len(got) == len(steps) - 1
    assert diverged > 0  # the quick stiff runs diverge: the non-finite readings are read too
    top = [max(q for q in by_step[t].values() if q is not None) for t in steps[:-1]]
    assert got != top  # not the plain top reading
    fig = tmp_path / "learning.png"
    cmd = [sys.executable, "-m", "benchmarks.learning", "--out", str(out), "--only", "stiff",
           "--base", "pbt", "--methods", "random", "--figure", str(fig)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mean = statistics.fmean(expect)
    assert "| pbt | 1 |" in proc.stdout and f"{mean:.3f} |" in proc.stdout, proc.stdout
    assert "| random | 1 |" in proc.stdout and fig.stat().st_size > 0
    proc = subprocess.run([*cmd[:-3], "fire@paper"], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr


def test_wide_variants_give_p1_more_workers_at_the_same_total():
    """The tenth and eleventh passes' shapes (``benchmarks/variants.py: SHAPES``): the
    parents shrink, the evaluators become a fraction of the parents (or keep their
    number), P_1 takes the rest; same number of workers."""
    import argparse

    from benchmarks.__main__ import all_benchmarks, select
    from benchmarks.common import fire_workers

    args = argparse.Namespace(only=["stiff", "rl-lqr50", "nqm36-noise"], seeds=None,
                              variants=["wide+strat+final", "wide7", "wideE", "wideP"], methods=None)  # fmt: skip
    got = {
        (b.name, m): (
            b.methods[m]["algorithm"]["subpopulation_size"],
            b.methods[m]["algorithm"]["evaluators"],
        )  # fmt: skip
        for b in select(all_benchmarks(False), args)
        for m in ("fire", "fire@wide+strat+final", "fire@wide7", "fire@wideE", "fire@wideP")
    }
    assert got[("stiff", "fire@wide+strat+final")] == ([12, 6], 4)
    assert got[("stiff", "fire@wide7")] == ([10, 7], 5)
    assert got[("rl-lqr50", "fire@wide+strat+final")] == ([28, 13], 9)
    assert got[("nqm36-noise", "fire@wide+strat+final")] == ([15, 6, 6], 9)
    assert got[("stiff", "fire@wideE")] == ([10, 6], 6)
    assert got[("stiff", "fire@wideP")] == ([10, 8], 4)
    assert got[("nqm36-noise", "fire@wideE")] == ([12, 6, 6], 12)
    assert got[("rl-lqr50", "fire@wideP")] == ([23, 18], 9)
    for (name, _m), (size, ev) in got.items():
        base = got[(name, "fire")]
        total = {"subpopulations": 3 if name == "nqm36-noise" else 2, "evaluators": ev}
        assert fire_workers({**total, "subpopulation_size": size}) == fire_workers(
            {**total, "subpopulation_size": base[0], "evaluators": base[1]}
        )


def test_rl_replays_counts_only_the_runs_it_replays(tmp_path):
    """``benchmarks.rl_replays`` says how many runs it replayed and how many it found in
    the cache (it used to call every run "replayed"); ``--only`` picks benchmarks, and an
    unknown one is one line, exit 2."""
    out = tmp_path / "sweep"
    proc = bench(["--quick", "--only", "rl-lqr22", "--seeds", "0", "--methods", "random",
                  "--out", str(out), "--no-report"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    cmd = [sys.executable, "-m", "benchmarks.rl_replays", "--out", str(out), "--procs", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    again = subprocess.run([*cmd, "--only", "rl-lqr22"], cwd=ROOT, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert "1 runs replayed, 0 cached" in first.stdout, first.stdout
    assert "0 runs replayed, 1 cached" in again.stdout and "(cached)" in again.stdout
    bad = subprocess.run([*cmd, "--only", "rl-lqr99"], cwd=ROOT, env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
