"""FIRE PBT's named departures from the paper (issue 11), each off by default.

Same scripted style and ids as ``test_fire.py``: members 0-3 are P_1, 4-7 are P_2,
evaluators follow; curves are compared with ``smooth=False``.
"""

import json

import numpy as np
import pytest
from test_fire import SPACE, fire, report  # the factory and space of the paper's tests

from firepbt.algorithms import Assign, CopyWeights, Free
from firepbt.core.curves import Curve


def scripted(d, steps=range(10, 401, 10)):
    """A fixed run of scores and ready points; returns every command issued."""
    cmds = []
    for s in steps:
        j = s // 10
        scores = {0: 10.0 + j, 1: 40.0 + 0.5 * j, 2: 30.0, 3: 20.0 + j % 7}
        scores.update({4: 45.0 - j % 5, 5: 45.0, 6: 44.0 + 0.1 * j, 7: 43.0})
        scores.update({8: 45.0 + j % 3, 9: 45.0 + j % 4, 10: 46.0})
        cmds += report(d, s, scores)
        if s % 50 == 0:
            cmds += d.on_ready(range(11))
    return cmds


def test_explicit_paper_values_change_nothing():
    a = fire(seed=3, init_sampling="iid")
    b = fire(seed=3, init_sampling="iid", parent_resample=0.0, reseed_after=0, eval_patience=1.0, protect_steps=0,
             greedy_finish=0.0, eval_stop=0.0, parent_perturb_power=1.0, parent_freeze=0.0,
             rank_freed_parents=False, greedy_smoothed=False, greedy_bar="top",
             parent_own_hparams=False)  # fmt: skip
    assert scripted(a) == scripted(b)
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


def test_parent_resample_draws_parents_from_the_prior_and_leaves_p1_alone():
    d = fire(seed=5, parent_resample=1.0)
    h = {"lr": 0.1}
    twin = np.random.default_rng(5)
    twin.bit_generator.state = d.rng.bit_generator.state
    got = d.explored(d.workers[4], h)  # P_2: the coin, then a prior sample
    twin.random()
    assert got == SPACE.sample(twin)
    got = d.explored(d.workers[0], h)  # P_1: the paper's explore, no coin drawn
    assert got == SPACE.explore(h, twin)
    d0 = fire(seed=5, parent_resample=0.0)
    lr = d0.explored(d0.workers[4], h)["lr"]
    assert any(lr == pytest.approx(0.1 * f) for f in (0.5, 0.8, 1.25, 2.0))


def test_parent_resample_zero_probability_never_resamples():
    d = fire(seed=1, parent_resample=0.5)
    seen = [d.explored(d.workers[4], {"lr": 0.1})["lr"] for _ in range(200)]
    perturbed = [x for x in seen if round(x, 6) in (0.05, 0.08, 0.125, 0.2)]
    assert 60 < len(perturbed) < 140  # about half perturbed, half drawn afresh


def exploits(cmds):
    return sorted(
        (c.dst, c.src) for c in cmds if isinstance(c, CopyWeights) and c.reason == "exploit"
    )


P1_SCORES = {0: 10.0, 1: 40.0, 2: 30.0, 3: 20.0}
P2_SCORES = {4: 45.0, 5: 44.0, 6: 5.0, 7: 43.0}


@pytest.mark.parametrize("finish, step", [(0.0, 6000), (0.3, 6000), (0.5, 4990)])
def test_greedy_finish_off_or_not_yet_ranks_each_subpopulation_apart(finish, step):
    d = fire(seed=2, greedy_finish=finish)  # steps = 10,000
    report(d, step, {**P1_SCORES, **P2_SCORES})
    moves = exploits(d.on_ready(range(8)))
    assert (0, 1) in moves  # P_1's loser copies P_1's best, as in the paper
    assert all(src in (0, 1, 2, 3) for dst, src in moves if dst < 4)


def test_greedy_finish_ranks_every_member_by_q_in_the_last_fraction():
    d = fire(seed=2, greedy_finish=0.5)
    report(d, 5000, {**P1_SCORES, **P2_SCORES})  # step 5000 of 10,000: the last half
    moves = exploits(d.on_ready(range(8)))
    # one truncation over all 8 members by Q: bottom quarter {6: 5.0, 0: 10.0}, top {4, 5}
    assert [dst for dst, _ in moves] == [0, 6]
    assert all(src in (4, 5) for _, src in moves)
    assert d.workers[0].latest in (45.0, 44.0)


def test_greedy_finish_explores_parents_as_the_paper_does():
    d = fire(seed=5, parent_resample=1.0, greedy_finish=0.5)
    h = {"lr": 0.1}
    twin = np.random.default_rng(5)
    twin.bit_generator.state = d.rng.bit_generator.state
    d.workers[4].step = 5000  # in the last half: no coin, the plain explore
    assert d.explored(d.workers[4], h) == SPACE.explore(h, twin)
    d.workers[4].step = 4990  # before it: parent_resample's coin and prior sample
    got = d.explored(d.workers[4], h)
    twin.random()
    assert got == SPACE.sample(twin)


@pytest.mark.parametrize("stop, step, assigned", [(0.0, 5000, True), (0.5, 4990, True),
                                                  (0.5, 5000, False)])  # fmt: skip
def test_eval_stop_assigns_no_evaluator_in_the_last_fraction(stop, step, assigned):
    d = fire(seed=2, eval_stop=stop)  # steps = 10,000
    report(d, step, {**P1_SCORES, **P2_SCORES})
    cmds = d.on_ready(range(8))
    assert bool([c for c in cmds if isinstance(c, Assign)]) is assigned


def success(d):
    """The success scenario of test_fire: evaluator 8 hands its weights to member 1."""
    report(d, 10, {0: 10, 1: 40, 2: 30, 3: 20, 4: 45, 5: 45, 6: 45, 7: 45})
    d.on_ready([4, 5, 6, 7])
    for s in range(20, 201, 10):
        j = (s - 10) // 10
        scores = {0: 10.0 + j, 1: 40.0 + j, 2: 30.0, 3: 20.0}
        scores.update({4: 45.0, 5: 45.0, 6: 45.0, 7: 45.0, 8: 45.0 + 5 * j, 9: 45.0, 10: 45.0})
        report(d, s, scores)
    cmds = d.on_ready([8])
    assert cmds[0] == CopyWeights(8, 1, "success")


@pytest.mark.parametrize("protect, exploited_at_210", [(0, True), (50, False)])
def test_protect_steps_keeps_a_target_that_just_received_weights(protect, exploited_at_210):
    d = fire(protect_steps=protect)
    success(d)
    # member 1 (the target, at step 200) now scores lowest of P_1
    report(d, 210, {0: 50.0, 1: 5.0, 2: 30.0, 3: 20.0})
    cmds = d.on_ready([0, 1, 2, 3])
    assert any(c == CopyWeights(c.src, 1, "exploit") for c in cmds if isinstance(c, CopyWeights)) is (
        exploited_at_210
    )  # fmt: skip
    if not exploited_at_210:
        report(d, 250, {0: 50.0, 1: 5.0, 2: 30.0, 3: 20.0})  # 50 steps on its new weights
        cmds = d.on_ready([0, 1, 2, 3])
        assert [c.dst for c in cmds if isinstance(c, CopyWeights) and c.reason == "exploit"] == [1]


def test_protect_steps_does_not_shield_a_diverged_target():
    d = fire(protect_steps=1000)
    success(d)
    report(d, 210, {0: 50.0, 1: float("nan"), 2: 30.0, 3: 20.0})
    cmds = d.on_ready([0, 1, 2, 3])
    assert [c.dst for c in cmds if isinstance(c, CopyWeights) and c.reason == "exploit"] == [1]


def test_reseed_after_copies_p1_weights_into_a_stalled_parent_subpopulation():
    d = fire(reseed_after=100)
    p1 = {0: 10.0, 1: 40.0, 2: 30.0, 3: 20.0}
    p2 = {4: 1.0, 5: 2.0, 6: 3.0, 7: 4.0}
    report(d, 50, {**p1, **p2})
    cmds = d.on_ready(range(8))
    assert not [c for c in cmds if isinstance(c, CopyWeights) and c.reason == "reseed"]
    parent4 = d.workers[4].evaluator
    h4 = dict(d.workers[4].hparams)
    report(d, 100, {**p1, **p2})
    cmds = d.on_ready(range(8))
    reseeds = [c for c in cmds if isinstance(c, CopyWeights) and c.reason == "reseed"]
    # bottom quarter of P_2 by Q (member 4) copies P_1's best (member 1), keeps its hparams
    assert reseeds == [CopyWeights(1, 4, "reseed")]
    assert d.workers[4].hparams == h4 and d.workers[4].latest == 40.0
    if parent4 is not None:
        assert Free(parent4, "parent_exploited") in cmds
    report(d, 150, {**p1, **p2})  # the clock restarted at the reseed
    cmds = d.on_ready(range(8))
    assert not [c for c in cmds if isinstance(c, CopyWeights) and c.reason == "reseed"]


def test_reseed_clock_restarts_at_a_success():
    d = fire(reseed_after=150)
    success(d)  # success at step 200: P_2's clock restarts there
    report(d, 300, {i: 40.0 + i for i in range(8)})
    cmds = d.on_ready(range(8))
    assert not [c for c in cmds if isinstance(c, CopyWeights) and c.reason == "reseed"]
    report(d, 350, {i: 40.0 + i for i in range(8)})
    cmds = d.on_ready(range(8))
    assert [c for c in cmds if isinstance(c, CopyWeights) and c.reason == "reseed"]


def check(d, e_scores, t_scores, trained):
    report(d, 10, {0: 10, 1: 40, 2: 30, 3: 20, 4: 45, 5: 45, 6: 45, 7: 45})
    assert Assign(8, 4, 1) in d.on_ready([4, 5, 6, 7])
    e, t = d.workers[8], d.workers[1]
    e.curve = Curve(np.arange(len(e_scores)) * 10, e_scores)
    t.curve = Curve(np.arange(len(t_scores)) * 10, t_scores)
    e.trained = trained
    d.check(e, [])
    return d.checks[-1]


CLOSING = [50.0 + i for i in range(20)]  # steps 0..190: +0.1 per step, ends at 69
FLAT = [50.0] * 20


@pytest.mark.parametrize(
    "patience, e_scores, target_start, trained, outcome",
    [
        (1.0, CLOSING, 75.0, 110, "stop"),  # the paper: no overlap after max_eval_steps
        (3.0, CLOSING, 75.0, 110, "continue"),  # gap 6 at 0.1/step: 60 <= 300 - 110 steps
        (3.0, CLOSING, 100.0, 110, "stop"),  # gap 31: 310 > 190 steps, too slow
        (3.0, FLAT, 75.0, 110, "stop"),  # not closing
        (3.0, CLOSING, 75.0, 310, "stop"),  # past patience x max_eval_steps
    ],
)
def test_eval_patience_waits_while_the_gap_closes(
    patience, e_scores, target_start, trained, outcome
):
    d = fire(eval_patience=patience)
    got = check(d, e_scores, [target_start, target_start + 1, target_start + 2], trained)
    assert got["p"] is None
    assert got["outcome"] == outcome


@pytest.mark.parametrize("greedy", [False, True])
def test_greedy_sources_lets_p1_copy_parents_as_good_by_q(greedy):
    picked = set()
    for seed in range(12):
        d = fire(seed=seed, greedy_sources=greedy)
        # P_2 member 4 scores above P_1's top (member 1); 5-7 below it
        report(d, 10, {0: 10.0, 1: 40.0, 2: 30.0, 3: 20.0, 4: 50.0, 5: 1.0, 6: 39.0, 7: 1.0})
        h4 = dict(d.workers[4].hparams)
        cmds = d.on_ready([0, 1, 2, 3])
        (copy,) = [c for c in cmds if isinstance(c, CopyWeights) and c.reason == "exploit"]
        assert copy.dst == 0  # P_1's loser
        picked.add(copy.src)
        if copy.src == 4:  # P_2's member keeps its network and hyperparameters
            assert d.workers[4].hparams == h4 and d.workers[4].latest == 50.0
            assert d.workers[0].latest == 50.0
    assert picked == ({1, 4} if greedy else {1})


@pytest.mark.parametrize("smoothed", [False, True])
def test_greedy_smoothed_judges_parent_members_by_their_smoothed_q(smoothed):
    """greedy_smoothed: a parent member whose latest Q passes P_1's bar on one reading
    (a spike) but whose GP-smoothed Q does not is no source; with a steady high curve it
    is one either way."""
    noise = np.random.default_rng(0).standard_normal(16)
    spike = [*(20.0 + 3.0 * noise[:15]), 45.0]  # member 4: noisy at ~20, one lucky reading
    steady = list(45.0 + 0.1 * np.arange(16) + 0.2 * noise)  # member 6: good all along
    picked = set()
    for seed in range(12):
        d = fire(seed=seed, greedy_sources=True, greedy_smoothed=smoothed)
        for k in range(16):
            report(d, 10 * (k + 1), {0: 10.0, 1: 40.0, 2: 30.0, 3: 20.0, 4: spike[k],
                                     5: 1.0, 6: steady[k], 7: 1.0})  # fmt: skip
        assert d.workers[4].latest == 45.0 > 40.0  # raw: above P_1's top (member 1)
        assert float(d.workers[4].curve.smoothed()[-1]) < 40.0  # smoothed: below it
        cmds = d.on_ready([0, 1, 2, 3])
        picked |= {c.src for c in cmds if isinstance(c, CopyWeights) and c.reason == "exploit"}
    assert picked == ({1, 6} if smoothed else {1, 4, 6})


@pytest.mark.parametrize(
    "bar, parents",
    [("top", {8, 9, 10, 11}), ("best", {9}), ("union", {8, 9, 10})],
)
def test_greedy_bar_sets_the_q_a_parent_member_needs(bar, parents):
    """P_1 (members 0-7) has two top members, 1 (Q 40) and 5 (35); parents 8-11 score
    38, 45, 37, 36. "top": as good as 35; "best": as good as 40; "union": the worst of
    the top four of all sixteen members (45, 40, 38, 37)."""
    q = {0: 10.0, 1: 40.0, 2: 30.0, 3: 20.0, 4: 15.0, 5: 35.0, 6: 12.0, 7: 11.0}
    q.update({8: 38.0, 9: 45.0, 10: 37.0, 11: 36.0, 12: 1.0, 13: 1.0, 14: 1.0, 15: 1.0})
    picked = set()
    for seed in range(30):
        d = fire(subpops=(8, 8), evaluators=6, seed=seed, greedy_sources=True, greedy_bar=bar)
        report(d, 10, q)
        assert d.greedy_threshold([1, 5]) == {"top": 35.0, "best": 40.0, "union": 37.0}[bar]
        cmds = d.on_ready(range(8))
        copies = [c for c in cmds if isinstance(c, CopyWeights) and c.reason == "exploit"]
        assert {c.dst for c in copies} == {0, 7}  # P_1's two losers
        picked |= {c.src for c in copies}
    assert picked == {1, 5} | parents


def test_parent_perturb_power_raises_the_parents_factors_and_leaves_p1_alone():
    d = fire(seed=5, parent_perturb_power=2.0)
    h = {"lr": 0.1}
    twin = np.random.default_rng(5)
    twin.bit_generator.state = d.rng.bit_generator.state
    got = d.explored(d.workers[4], h)  # P_2: the same draw, the factor squared
    assert got == SPACE.explore(h, twin, 2.0)
    assert round(got["lr"], 6) in (0.025, 0.064, 0.15625, 0.4)
    assert d.explored(d.workers[0], h) == SPACE.explore(h, twin)  # P_1: the paper's
    seen = {round(d.explored(d.workers[5], h)["lr"], 6) for _ in range(100)}
    assert seen == {0.025, 0.064, 0.15625, 0.4}


@pytest.mark.parametrize(
    "freeze, member, step, protected",
    [(0.0, 4, 9000, False), (0.3, 4, 6990, False), (0.3, 4, 7000, True), (0.3, 0, 9000, False)],
)
def test_parent_freeze_protects_parents_in_the_last_fraction(freeze, member, step, protected):
    d = fire(parent_freeze=freeze)  # steps = 10,000
    d.workers[member].step = step
    assert d.protected(d.workers[member]) is protected


def test_parent_freeze_still_replaces_a_diverged_parent():
    d = fire(evaluators=4, parent_freeze=0.5)
    report(d, 6000, {**P1_SCORES, **P2_SCORES})
    d.on_ready(range(12))  # evaluators on P_2's members
    report(d, 6100, {**P1_SCORES, 4: 45.0, 5: 44.0, 6: float("nan"), 7: 43.0})
    moves = exploits(d.on_ready(range(8)))
    assert [dst for dst, _ in moves if dst >= 4] == [6]


@pytest.mark.parametrize("rank_freed", [False, True])
def test_rank_freed_parents_keeps_a_stopped_evaluators_parent_in_phi(rank_freed):
    d = fire(evaluators=4, rank_freed_parents=rank_freed)
    report(d, 10, {**P1_SCORES, **P2_SCORES})
    cmds = d.on_ready([4, 5, 6, 7])
    assert sorted(c.parent for c in cmds if isinstance(c, Assign)) == [4, 5, 6, 7]
    target = d.workers[1]
    target.curve = Curve(np.arange(12) * 10, 40.0 + np.arange(12.0))
    for e in d.evaluators():  # every one evaluates against member 1's curve
        assert e.target == 1
        if e.parent == 4:  # far below the target's start after max_eval_steps: stops
            e.curve, e.trained = Curve(np.arange(12) * 10, np.full(12, 5.0)), 110
        else:  # the target's own curve, just assigned: continues (p = 1 <= 1.01)
            e.curve, e.trained = Curve(target.curve.steps, target.curve.scores), 0
    parent_of = {e.id: e.parent for e in d.evaluators()}
    ranked = []
    fitness = d.fitness
    d.fitness = lambda subpop: ranked.append((subpop, sorted(fitness(subpop)))) or fitness(subpop)
    cmds = d.on_ready(range(12))
    stopped = [c.evaluator for c in cmds if isinstance(c, Free) and c.reason == "stop"]
    assert [parent_of[e] for e in stopped] == [4]
    phi = [ids for subpop, ids in ranked if subpop == 2]
    assert phi == ([[4, 5, 6, 7]] if rank_freed else [[5, 6, 7]])
    # four ranked: one loser (member 4, the stopped one's parent); three: nobody exploits
    assert [dst for dst, _ in exploits(cmds) if dst >= 4] == ([4] if rank_freed else [])
    assert d._freed_curves == {}  # only for this ready point


def _slices(lrs, n):
    return sorted(min(int(np.log(lr / 0.01) / np.log(100) * n), n - 1) for lr in lrs)


def test_stratified_initial_draws_are_the_default():
    # init_sampling (issue 11, fifth pass): each sub-population's initial learning rates
    # hold one draw in each of its 8 equal slices of the log prior, so no parent
    # sub-population can start, as on NQM seeds 1 and 17, with every rate below 0.09
    for seed in range(20):
        d = fire(subpops=(8, 8), evaluators=6, seed=seed)  # the factory calls start()
        for sub in (1, 2):
            assert _slices([w.hparams["lr"] for w in d.members(sub)], 8) == list(range(8))


def test_iid_initial_draws_are_the_papers():
    d = fire(subpops=(8, 8), evaluators=6, seed=4, init_sampling="iid")
    twin = np.random.default_rng(4)
    assert [w.hparams for w in d.members()] == [SPACE.sample(twin) for _ in range(16)]


@pytest.mark.parametrize("own", [False, True])
def test_parent_own_hparams_keeps_a_losing_parents_hyperparameters(own):
    """parent_own_hparams: a parent that loses takes the winner's weights but explores
    from its own hyperparameters; P_1 and a diverged parent copy the winner's (paper)."""
    d = fire(seed=4, parent_own_hparams=own)
    report(d, 10, {w: float(w) for w in range(8)})
    d.workers[5].hparams, d.workers[6].hparams = {"lr": 0.2}, {"lr": 0.01}
    d.workers[1].hparams, d.workers[2].hparams = {"lr": 0.3}, {"lr": 0.02}
    twin = np.random.default_rng(4)
    twin.bit_generator.state = d.rng.bit_generator.state
    cmds = []
    d.exploit_one(6, 5, cmds)  # P_2: 5 loses to 6
    (copy,) = [c for c in cmds if isinstance(c, CopyWeights)]
    assert (copy.src, copy.dst) == (6, 5)  # the weights move either way
    assert d.workers[5].hparams == SPACE.explore({"lr": 0.2 if own else 0.01}, twin)
    d.exploit_one(2, 1, [])  # P_1: the paper's copy of both, whatever the setting
    assert d.workers[1].hparams == SPACE.explore({"lr": 0.02}, twin)
    report(d, 20, {7: float("nan")})
    d.workers[7].hparams = {"lr": 0.5}
    assert d.workers[7].diverged
    d.exploit_one(6, 7, [])  # a diverged parent: its own rates diverged, it takes 6's
    assert d.workers[7].hparams == SPACE.explore({"lr": 0.01}, twin)


def test_phi_checked_ranks_a_parent_only_once_its_evaluator_was_checked():
    """``phi = "checked"``: a parent has a fitness once its evaluator has been checked
    (twelfth pass). Before any check Φ is empty (the paper's Φ holds every parent with
    an evaluator); after the evaluators' first check it is the paper's Φ again."""

    def decider(phi):
        d = fire(mode="async", phi=phi)
        report(d, 10, {0: 10, 1: 40, 2: 30, 3: 20, 4: 45, 5: 45, 6: 45, 7: 45})
        d.on_ready([4, 5, 6, 7])  # evaluators 8, 9, 10 assigned to parents 4, 5, 6
        return d

    paper, checked = decider("assigned"), decider("checked")
    assert sorted(paper.fitness(2)) == [4, 5, 6]
    assert checked.fitness(2) == {}  # no evaluator checked yet: no parent has a fitness
    for d in (paper, checked):
        for step, (a, b, c) in zip(
            (20, 30, 40), ((46, 47, 44), (47, 49, 43), (48, 51, 42)), strict=True
        ):
            report(d, step, {8: a, 9: b, 10: c, 1: 40})
        d.on_ready([8])  # only evaluator 8 has had its check
    assert sorted(checked.fitness(2)) == [4]
    assert sorted(paper.fitness(2)) == [4, 5, 6]
    for d in (paper, checked):
        d.on_ready([9, 10])
    assert checked.fitness(2) == paper.fitness(2)


@pytest.mark.parametrize("subpops, evaluators", [(2, 3), (3, 6)])
def test_phi_checked_is_the_paper_in_sync_mode(tmp_path, subpops, evaluators):
    """A synchronous ready point checks every evaluator before it ranks the parents and
    assigns after, so every evaluator in Φ has been checked: the same run, byte for byte
    (with three sub-populations too: the choice of a target in P_2 keeps the paper's Φ)."""
    from test_executors import ALGOS, BASE

    from firepbt.api import run
    from firepbt.config import Config

    for phi in ("assigned", "checked"):
        algo = dict(ALGOS["fire"], subpopulations=subpops, evaluators=evaluators, phi=phi)
        run(Config.from_dict(dict(BASE, algorithm=algo, seed=4)), tmp_path / phi)
    lines = [(tmp_path / n / "events.jsonl").read_text().splitlines()[1:] for n in ("assigned", "checked")]  # fmt: skip
    assert lines[0] == lines[1]
    assert any('"success"' in line for line in lines[0])  # weights moved between sub-populations
    if subpops == 3:  # some evaluator's target was a member of P_2 (ids 4-7)
        assigns = [json.loads(line) for line in lines[0] if '"ev": "assign"' in line]
        assert any(4 <= a["target"] <= 7 for a in assigns)
