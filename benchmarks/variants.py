"""Named FIRE PBT variants for seed sweeps and ablations (issue 11).

Each variant is a set of ``[algorithm]`` settings merged over a benchmark's FIRE PBT
config; its runs go to ``DIR/<benchmark>/fire@<variant>-seed<N>``. ``paper`` spells the
paper's behaviour out (every departure off), so it stays the paper's whatever firepbt's
defaults become; the others switch one departure on, or several joined by ``+``
(``reseed+patience``). Step counts are multiples of the benchmark's ``max_eval_steps``,
so one variant means the same rule on every benchmark (chosen on NQM, not retuned).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PAPER: dict[str, Any] = {
    "parent_resample": 0.0,
    "reseed_after": 0,
    "eval_patience": 1.0,
    "protect_steps": 0,
    "greedy_sources": False,
    "greedy_smoothed": False,
    "greedy_bar": "top",
    "greedy_finish": 0.0,
    "eval_stop": 0.0,
    "parent_perturb_power": 1.0,
    "parent_freeze": 0.0,
    "rank_freed_parents": False,
    "parent_own_hparams": False,
    "init_sampling": "iid",
    "phi": "assigned",
    "best": "highest",  # the paper's best network (a top-level setting: TOP_LEVEL)
    "end": "all",  # SPEC's end of an asynchronous run (top level)
}

#: settings every algorithm takes (random search and PBT too): a variant made only of
#: these is also run as ``pbt@<variant>`` and ``random@<variant>``, so that the
#: baselines get the same change (the fifth pass: stratified initial draws).
COMMON: dict[str, Callable[[int], dict[str, Any]]] = {
    "strat": lambda m: {"init_sampling": "stratified"},
    # the seventh pass: the best network is the best final network of P_1 (config
    # ``best = "final"``, a top-level setting: TOP_LEVEL; the default since), or the
    # paper's, the highest Q recorded (for the baselines: ``pbt@highest``)
    "final": lambda m: {"best": "final"},
    "highest": lambda m: {"best": "highest"},
    # the twelfth pass: asynchronous, on the simulated cluster (virtual time, log-normal
    # speeds and 5% stragglers 3x slower: the executor's defaults; issue 12)
    "asim": lambda m: {"mode": "async", "executor": "simulated"},
    # ... and asynchronous in-process: workers of equal speed, taken round-robin
    "async": lambda m: {"mode": "async"},
}

#: the variants' settings that live at the config's top level, not in [algorithm]
TOP_LEVEL = frozenset({"best", "mode", "executor", "end"})


def split(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A variant's settings as ([algorithm] settings, top-level settings)."""
    top = {k: v for k, v in settings.items() if k in TOP_LEVEL}
    return {k: v for k, v in settings.items() if k not in TOP_LEVEL}, top


#: the tenth pass: a larger greedy P_1 at the same number of workers (the list form of
#: ``subpopulation_size``). name -> (parent fraction, evaluator fraction): every parent
#: sub-population shrinks to the first fraction of its size (at least 4 members), the
#: evaluators become the second fraction of the parents (3/4 is the paper's ratio; None
#: keeps the benchmark's number of evaluators), and P_1 takes the rest.
#: 2 x 8 + 6 -> 12 + 6 + 4 ("wide"), 10 + 7 + 5 ("wide7"), 10 + 6 + 6 ("wideE"),
#: 10 + 8 + 4 ("wideP"); 2 x 18 + 14 -> 28 + 13 + 9 ("wide").
SHAPES: dict[str, tuple[float, float | None]] = {
    "wide": (3 / 4, 3 / 4),
    "wide7": (7 / 8, 3 / 4),
    # the eleventh pass: which of the two cuts costs on NQM, the parents or the evaluators
    "wideE": (3 / 4, None),
    "wideP": (1.0, 1 / 2),
}

#: name -> settings as a function of the benchmark's max_eval_steps.
VARIANTS: dict[str, Callable[[int], dict[str, Any]]] = {
    "paper": lambda m: {},
    "resample": lambda m: {"parent_resample": 0.25},
    "resample50": lambda m: {"parent_resample": 0.5},
    "reseed": lambda m: {"reseed_after": 3 * m},
    "patience": lambda m: {"eval_patience": 3.0},
    "protect": lambda m: {"protect_steps": m},
    "greedy": lambda m: {"greedy_sources": True},
    # the sixth pass: greedy_sources judging parent members by their GP-smoothed Q
    "greedys": lambda m: {"greedy_sources": True, "greedy_smoothed": True},
    # the ninth pass: the bar a parent member must pass, P_1's best or the union's top
    "greedysb": lambda m: {"greedy_sources": True, "greedy_smoothed": True, "greedy_bar": "best"},
    "greedysu": lambda m: {"greedy_sources": True, "greedy_smoothed": True, "greedy_bar": "union"},
    # a fraction of the budget, not of max_eval_steps: the same on every benchmark
    "finish20": lambda m: {"greedy_finish": 0.2},
    "finish40": lambda m: {"greedy_finish": 0.4},
    "finish60": lambda m: {"greedy_finish": 0.6},
    "stop10": lambda m: {"eval_stop": 0.1},
    "stop20": lambda m: {"eval_stop": 0.2},
    "stop30": lambda m: {"eval_stop": 0.3},
    # the third pass: the parents' learning rates (benchmarks/nqm_diagnose.py)
    "perturb2": lambda m: {"parent_perturb_power": 2.0},
    "freeze30": lambda m: {"parent_freeze": 0.3},
    "freeze50": lambda m: {"parent_freeze": 0.5},
    "rankfreed": lambda m: {"rank_freed_parents": True},
    # the ninth pass: a parent that loses keeps its own hyperparameters (benchmarks/parents.py)
    "parentown": lambda m: {"parent_own_hparams": True},
    # issue 12 item 3: the GP approximation (refit after 25% growth) on the suite rows
    "refit25": lambda m: {"gp_refit": 0.25},
    # the twelfth pass (both defaults since): an asynchronous run ends when P_1 has reached
    # the budget (``end``), and a parent is ranked for its evolution only once its
    # evaluator has been checked (``phi``)
    "p1": lambda m: {"end": "p1"},
    "phic": lambda m: {"phi": "checked"},
    # the paper's own knobs, for the ablation of the second pass (benchmark values: p_stat
    # 0.01, max_eval_steps m)
    "pstat05": lambda m: {"p_stat": 0.05},
    "eval-half": lambda m: {"max_eval_steps": m // 2},
    "eval-quarter": lambda m: {"max_eval_steps": m // 4},
    "eval-twothirds": lambda m: {"max_eval_steps": 2 * m // 3},
    "eval-double": lambda m: {"max_eval_steps": 2 * m},
    # the tenth pass: shapes with a larger P_1 (:data:`SHAPES`, applied by :func:`shape`)
    **{name: (lambda m: {}) for name in SHAPES},
    **COMMON,
}


def shape(name: str, algo: dict[str, Any]) -> dict[str, Any]:
    """The sub-population sizes and evaluators of variant ``name`` for the FIRE PBT table
    ``algo`` (nothing unless a part of ``name`` is in :data:`SHAPES`)."""
    out: dict[str, Any] = {}
    for part in name.split("+"):
        if part not in SHAPES:
            continue
        n, size = algo["subpopulations"], algo["subpopulation_size"]
        total = n * size + algo["evaluators"]
        frac, ev_frac = SHAPES[part]
        parent = max(4, int(frac * size))
        if ev_frac is None:
            evaluators = algo["evaluators"]
        else:  # for 3/4 the same as the tenth pass's 3 * parents // 4 (exact in floats)
            evaluators = max(1, int(ev_frac * (n - 1) * parent))
        out = {
            "subpopulation_size": [total - (n - 1) * parent - evaluators] + [parent] * (n - 1),
            "evaluators": evaluators,
        }
    return out


def common(name: str) -> bool:
    """Whether every part of variant ``name`` is a setting all algorithms take."""
    return all(part in COMMON for part in name.split("+"))


def common_settings(name: str) -> dict[str, Any]:
    """The settings of a :func:`common` variant, for any algorithm."""
    out: dict[str, Any] = {}
    for part in name.split("+"):
        out.update(COMMON[part](0))
    return out


def known(name: str) -> bool:
    return all(part in VARIANTS for part in name.split("+"))


def variant(name: str, max_eval_steps: int) -> dict[str, Any]:
    """The departures' settings of variant ``name`` (every one spelled out)."""
    out: dict[str, Any] = dict(PAPER)
    for part in name.split("+"):
        out.update(VARIANTS[part](max_eval_steps))
    return out
