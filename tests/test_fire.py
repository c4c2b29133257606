"""FIRE PBT decider driven by scripted events, checked against SPEC.md "FIRE PBT".

Curves are compared with ``smooth=False`` so every expected value is hand-computed.
Ids: members 0-3 are P_1, 4-7 are P_2 (8-11 P_3 where used); evaluators follow.
"""

import math

import numpy as np
import pytest

from firepbt.algorithms import Assign, CopyWeights, Free, SetHparams
from firepbt.algorithms.fire import FirePBT, max_significant_points
from firepbt.core.curves import Curve, best_score_diff
from firepbt.core.space import LogUniform, SearchSpace

SPACE = SearchSpace({"lr": LogUniform(0.01, 1.0)})


def fire(subpops=(4, 4), evaluators=3, seed=0, **kw):
    kw.setdefault("max_eval_steps", 100)
    # the paper's Φ: these scripts rank parents whose evaluators have not been checked
    # yet (phi = "checked", the default since issue 11's twelfth pass, waits for a check)
    kw.setdefault("phi", "assigned")
    d = FirePBT(
        SPACE,
        np.random.default_rng(seed),
        subpopulations=list(subpops),
        evaluators=evaluators,
        steps=10_000,
        smooth=False,
        **kw,
    )
    d.start()
    return d


def report(d, step, scores):
    out = []
    for w, s in scores.items():
        out += d.on_result(w, step, s)
    return out


def kinds(cmds, kind):
    return [c for c in cmds if isinstance(c, kind)]


def assigned(d):
    """Assign evaluators 8, 9, 10 to P_2 members 4, 5, 6, all targeting P_1 member 1."""
    report(d, 10, {0: 10, 1: 40, 2: 30, 3: 20, 4: 45, 5: 45, 6: 45, 7: 45})
    return d.on_ready([4, 5, 6, 7])  # P_2 only: P_1 does not exploit here


def test_first_assignment_follows_the_evaluator_loop():
    d = fire()
    cmds = assigned(d)
    assert kinds(cmds, Assign) == [Assign(8, 4, 1), Assign(9, 5, 1), Assign(10, 6, 1)]
    assert kinds(cmds, CopyWeights) == [
        CopyWeights(4, 8, "assign"),
        CopyWeights(5, 9, "assign"),
        CopyWeights(6, 10, "assign"),
    ]
    # the evaluator trains with the target's hyperparameters, not its parent's
    for c in kinds(cmds, SetHparams):
        assert c.hparams == d.workers[1].hparams and c.reason == "assign"
    e = d.workers[8]
    assert e.step == 10 and list(e.curve.scores) == [45]  # curve starts at the copy
    assert d.workers[4].evaluator == 8 and d.workers[7].evaluator is None


def test_no_member_qualifies_evaluator_waits():
    d = fire()
    report(d, 10, {i: 1.0 for i in range(4)})  # P_2 has no score yet
    cmds = d.on_ready(range(8))
    assert kinds(cmds, Assign) == []


def test_min_steps_before_eval_per_subpopulation():
    d = fire(min_steps_before_eval=[0, 30])  # one entry per P_1..P_n; P_1 unused
    for step in (10, 20):
        report(d, step, {i: float(i) for i in range(8)})
        assert kinds(d.on_ready([4, 5, 6, 7]), Assign) == []
    report(d, 30, {i: float(i) for i in range(8)})
    assert len(kinds(d.on_ready([4, 5, 6, 7]), Assign)) == 3


def test_target_drawn_with_the_seed_when_child_has_no_fitness():
    targets = []
    for _ in range(2):
        d = fire(seed=7)
        report(d, 10, {4: 1.0, 5: 1.0, 6: 1.0, 7: 1.0})
        targets.append([a.target for a in kinds(d.on_ready([4, 5, 6, 7]), Assign)])
    assert targets[0] == targets[1]
    assert all(t in (0, 1, 2, 3) for t in targets[0])


def run_to(d, step, target_fn, evaluator_fn, start=20):
    """Members and evaluator 8 report every 10 steps up to ``step``."""
    for s in range(start, step + 1, 10):
        j = (s - 10) // 10
        scores = {
            0: 10.0 + j,
            1: target_fn(j),
            2: 30.0,
            3: 20.0,
            4: 45.0,
            5: 45.0,
            6: 45.0,
            7: 45.0,
        }
        scores.update({8: evaluator_fn(j), 9: 45.0, 10: 45.0})
        report(d, s, scores)


def test_success_copies_weights_into_target_and_frees_evaluators():
    d = fire()
    assigned(d)
    # target 1: 40, 41, 42, ...; evaluator 8: 45, then 50, 55, ... (faster)
    run_to(d, 100, lambda j: 40.0 + j, lambda j: 45.0 + 5 * j)
    # T = 90: overlap n = min(9, 9 - 5) = 4, p = 1/16 < 0.01 + (1 - 90/100): continue
    assert d.on_ready([8]) == []
    assert d.checks[-1]["outcome"] == "continue" and d.checks[-1]["p"] == pytest.approx(1 / 16)
    run_to(d, 200, lambda j: 40.0 + j, lambda j: 45.0 + 5 * j, start=110)
    target_h = dict(d.workers[1].hparams)
    cmds = d.on_ready([8])
    # T = 190: n = min(19, 19 - 5) = 14, 14 wins, p = 2^-14 < p_stat, diff = 140 - 59 > 0
    assert d.checks[-1]["p"] == pytest.approx(2.0**-14)
    # sections: evaluator [0, 14], target [5, 19]: max 45 + 5 * 14 against 59
    assert d.checks[-1]["diff"] == pytest.approx((45 + 5 * 14) - 59)
    assert cmds[0] == CopyWeights(8, 1, "success")
    assert Free(8, "success") in cmds
    # evaluators with the same target are freed, then everyone is reassigned
    assert Free(9, "target_replaced") in cmds and Free(10, "target_replaced") in cmds
    t = d.workers[1]
    assert t.hparams == target_h  # the target keeps its own hyperparameters
    assert t.latest == 45 + 5 * 19 and len(t.curve) == 1 and t.step == 200
    # least recently evaluated first: 7 never was (200 steps), then 4, 5 (190, ties by id)
    assert [(a.evaluator, a.parent) for a in kinds(cmds, Assign)] == [(8, 7), (9, 4), (10, 5)]
    assert all(a.target == 1 for a in kinds(cmds, Assign))


def criteria(e_scores, t_scores, trained):
    d = fire()
    assigned(d)
    e, t = d.workers[8], d.workers[1]
    e.curve = Curve(range(len(e_scores)), e_scores)
    t.curve = Curve(range(len(t_scores)), t_scores)
    e.trained = trained
    cmds = []
    d.check(e, cmds)
    return d.checks[-1], cmds


T_RISE = [4, 5, 6, 7, 8, 9, 10, 11, 12]


@pytest.mark.parametrize(
    "e_scores, trained, outcome, p",
    [
        # n = 7, 7 wins: p = 2^-7 < 0.01 and best_score_diff = 19 - 12 > 0
        ([5, 7, 9, 11, 13, 15, 17, 19, 21], 50, "success", 2.0**-7),
        # n = 6, 6 wins: p = 1/64 is above p_stat; the threshold p_stat + max(0, 1 - T/100)
        ([5, 7, 9, 11, 13, 15, 17], 50, "continue", 1 / 64),  # 0.51
        ([5, 7, 9, 11, 13, 15, 17], 99, "continue", 1 / 64),  # 0.02
        ([5, 7, 9, 11, 13, 15, 17], 100, "stop", 1 / 64),  # 0.01
        # slower than the target: 0 wins of 4, p = 1, stops at once
        ([5, 5.5, 6, 6.5, 7], 10, "stop", 1.0),
        # 2 wins of 4: p = 11/16 = 0.6875; threshold 0.71 at T = 30, 0.61 at T = 40
        ([5, 7, 8, 7.5, 8.5], 30, "continue", 11 / 16),
        ([5, 7, 8, 7.5, 8.5], 40, "stop", 11 / 16),
    ],
)
def test_stopping_and_success_criteria(e_scores, trained, outcome, p):
    check, cmds = criteria(e_scores, T_RISE, trained)
    assert check["outcome"] == outcome
    assert check["p"] == pytest.approx(p)
    assert check["threshold"] == pytest.approx(0.01 + max(0.0, 1 - trained / 100))
    if outcome == "stop":
        assert cmds == [Free(8, "stop")]
    elif outcome == "success":
        assert cmds[0] == CopyWeights(8, 1, "success")


@pytest.mark.parametrize("trained, outcome", [(100, "continue"), (110, "stop")])
def test_no_overlap_stops_only_after_max_eval_steps(trained, outcome):
    check, _ = criteria([100, 101, 102], [1, 2, 3], trained)
    assert check["p"] is None and check["outcome"] == outcome


def test_exploited_target_frees_its_evaluators():
    d = fire()
    assigned(d)
    report(d, 20, {0: 50, 1: 5, 2: 30, 3: 20, 4: 45, 5: 45, 6: 45, 7: 45, 8: 46, 9: 46, 10: 46})
    cmds = d.on_ready(range(8))  # P_1 ready: member 1 is now last and is exploited
    assert CopyWeights(0, 1, "exploit") in cmds
    for e in (8, 9, 10):
        assert Free(e, "target_exploited") in cmds


def test_exploited_parent_frees_its_evaluator_and_parent_fitness_is_a_sum():
    d = fire(evaluators=4)
    report(d, 10, {0: 10, 1: 40, 2: 30, 3: 20, 4: 45, 5: 45, 6: 45, 7: 45})
    d.on_ready([4, 5, 6, 7])
    assert [d.workers[m].evaluator for m in (4, 5, 6, 7)] == [8, 9, 10, 11]
    slopes = {8: 1.0, 9: 2.0, 10: 0.5, 11: 3.0}
    for s in range(20, 110, 10):
        j = (s - 10) // 10
        report(d, s, {e: 45 + k * j for e, k in slopes.items()})
        report(d, s, {m: 45.0 for m in range(4, 8)} | {m: 40.0 for m in range(4)})
    fit = d.fitness(2)
    curves = {m: d.workers[d.workers[m].evaluator].curve for m in (4, 5, 6, 7)}
    for m in curves:
        expect = sum(best_score_diff(curves[m], curves[k], smooth=False) for k in curves if k != m)
        assert fit[m] == pytest.approx(expect)
    assert min(fit, key=fit.get) == 6  # the slowest evaluator curve (slope 0.5)
    cmds = d.on_ready([4, 5, 6, 7])
    assert CopyWeights(7, 6, "exploit") in cmds  # top = member 7 (slope 3)
    assert Free(10, "parent_exploited") in cmds


def test_members_without_evaluator_have_no_parent_fitness():
    d = fire()
    assigned(d)
    assert set(d.fitness(2)) == {4, 5, 6}
    assert d.on_ready([4, 5, 6, 7]) == []  # 3 ranked members: nobody exploited


def test_diverged_evaluator_is_freed_at_once():
    d = fire()
    assigned(d)
    cmds = d.on_result(8, 20, float("nan"))
    assert cmds == [Free(8, "diverged")]
    assert d.workers[4].evaluator is None


def test_non_finite_scores_lose_comparisons_via_the_floor():
    d = fire()
    assigned(d)
    d.on_result(5, 20, float("inf"))  # inf is not a good score: the network diverged
    d.on_result(8, 20, 46.0)
    d.on_result(8, 30, float("-inf"))
    assert d.floor == 10 - 1  # lowest finite Q seen, minus 1
    assert all(math.isfinite(y) for y in d.floored(d.workers[8].curve).scores)
    floored = d.floored(Curve([0, 1], [1.0, float("nan")]))
    assert list(floored.scores) == [1.0, 9.0]


def test_three_subpopulations_target_is_best_parent_fitness_of_the_child():
    d = fire(subpops=(4, 4, 4), evaluators=4)
    # P_3 (8-11) are the least recently evaluated at first: give P_2 fewer steps
    report(d, 10, {i: float(i) for i in range(12)})
    cmds = d.on_ready(range(12))
    parents = [a.parent for a in kinds(cmds, Assign)]
    assert parents == [4, 5, 6, 7]  # all equal since_eval: lowest ids first (P_2 before P_3)
    for a in kinds(cmds, Assign):
        assert a.target in (0, 1, 2, 3)
    # now P_2 members have evaluators; give evaluator curves distinct slopes
    slopes = {12: 1.0, 13: 4.0, 14: 2.0, 15: 3.0}
    for s in range(20, 60, 10):
        j = (s - 10) // 10
        report(d, s, {e: 5 + k * j for e, k in slopes.items()})
    fit = d.fitness(2)
    best = max(fit, key=fit.get)
    assert best == 5  # its evaluator (13) improves fastest
    assert d.pick_target(2).id == 5


def test_success_into_a_parent_target_frees_that_parents_own_evaluator():
    d = fire(subpops=(4, 4, 4), evaluators=5)
    report(d, 10, {i: 45.0 for i in range(12)})
    d.on_ready(range(4, 12))
    e_p3 = [w for w in d.evaluators() if w.parent is not None and d.workers[w.parent].subpop == 3]
    assert len(e_p3) == 1  # 5th evaluator evaluates member 8 (P_3), targeting a P_2 member
    e = e_p3[0]
    target = e.target
    own = d.workers[target].evaluator
    assert own is not None
    e.curve = Curve(range(9), [5, 7, 9, 11, 13, 15, 17, 19, 21])
    d.workers[target].curve = Curve(range(9), T_RISE)
    cmds = []
    d.check(e, cmds)
    assert cmds[0] == CopyWeights(e.id, target, "success")
    assert Free(own, "parent_replaced") in cmds


def test_significance_needs_more_than_log2_points():
    assert max_significant_points(0.01) == 7
    assert max_significant_points(0.05) == 5
    assert 2.0 ** -max_significant_points(0.01) < 0.01 <= 2.0 ** -(max_significant_points(0.01) - 1)
