"""Configs are validated before any training, each error naming its field."""

import json

import pytest

from firepbt.config import Config, FireSettings, apply_overrides
from firepbt.core.errors import ConfigError

GOOD = {
    "trainable": "toys:Climb",
    "steps": 400,
    "eval_interval": 10,
    "ready_interval": 50,
    "space": {"lr": {"kind": "log_uniform", "low": 0.001, "high": 1.0}},
    "algorithm": {"name": "fire", "subpopulation_size": 4, "evaluators": 3, "max_eval_steps": 100},
}


def with_(path, value):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD.items()}
    keys = path.split(".")
    table = data
    for k in keys[:-1]:
        table = table[k]
    if value is DELETE:
        del table[keys[-1]]
    else:
        table[keys[-1]] = value
    return data


DELETE = object()


def test_good_config_and_defaults():
    c = Config.from_dict(GOOD)
    assert isinstance(c.algorithm, FireSettings)
    assert c.workers == 2 * 4 + 3
    assert c.direction == "max" and c.mode == "sync" and c.seed == 0
    assert Config.from_dict(c.to_dict()) == c


def test_departures_from_the_paper_default_off_and_round_trip():
    c = Config.from_dict(GOOD)
    a = c.algorithm
    assert (a.parent_resample, a.reseed_after, a.eval_patience, a.protect_steps) == (0.0, 0, 1, 0)
    assert (a.greedy_sources, a.greedy_finish, a.eval_stop) == (False, 0.0, 0.0)
    assert (a.parent_perturb_power, a.parent_freeze, a.rank_freed_parents) == (1.0, 0.0, False)
    assert (a.greedy_smoothed, a.greedy_bar, a.parent_own_hparams) == (False, "top", False)
    algo = dict(GOOD["algorithm"], parent_resample=0.25, reseed_after=300, eval_patience=3,
                protect_steps=100, parent_perturb_power=2, parent_freeze=0.3,
                rank_freed_parents=True, greedy_sources=True,
                greedy_smoothed=True, greedy_bar="best", parent_own_hparams=True)  # fmt: skip
    c = Config.from_dict(with_("algorithm", algo))
    a = c.algorithm
    assert (a.parent_resample, a.reseed_after, a.eval_patience, a.protect_steps) == (
        0.25, 300, 3.0, 100
    )  # fmt: skip
    assert (a.parent_perturb_power, a.parent_freeze, a.rank_freed_parents) == (2.0, 0.3, True)
    assert (a.greedy_sources, a.greedy_smoothed, a.greedy_bar) == (True, True, "best")
    assert a.parent_own_hparams is True
    assert Config.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("algo", [
    {"name": "fire", "subpopulation_size": 4, "evaluators": 3, "max_eval_steps": 100},
    {"name": "pbt", "population": 8},
    {"name": "random", "population": 8},
])  # fmt: skip
def test_init_sampling_for_every_algorithm(algo):
    # FIRE PBT stratifies by default (issue 11, fifth pass); PBT and random search keep
    # i.i.d. draws unless asked
    default = "stratified" if algo["name"] == "fire" else "iid"
    assert Config.from_dict(with_("algorithm", algo)).algorithm.init_sampling == default
    other = "iid" if default == "stratified" else "stratified"
    c = Config.from_dict(with_("algorithm", dict(algo, init_sampling=other)))
    assert c.algorithm.init_sampling == other
    assert Config.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match=r"^algorithm.init_sampling: must be one of"):
        Config.from_dict(with_("algorithm", dict(algo, init_sampling="sobol")))


def test_default_evaluators_are_three_quarters_of_the_parents():
    c = Config.from_dict(
        with_("algorithm", {"name": "fire", "subpopulations": 3, "max_eval_steps": 100})
    )
    assert c.algorithm.evaluators == 12 and c.workers == 36


def test_subpopulation_sizes_as_a_list():
    """``subpopulation_size = [12, 6]``: P_1 of 12, P_2 of 6; the evaluators default to
    3/4 of the parents; ``subpopulations`` is the list's length (or must equal it); the
    list is what to_dict writes back, and a config with one size writes it as before."""
    c = Config.from_dict(with_("algorithm", {"name": "fire", "subpopulation_size": [12, 6],
                                             "max_eval_steps": 100}))  # fmt: skip
    assert c.algorithm.sizes == (12, 6) and c.algorithm.subpopulations == 2
    assert c.algorithm.evaluators == 4 and c.workers == 22
    assert c.to_dict()["algorithm"]["subpopulation_size"] == [12, 6]
    assert Config.from_dict(c.to_dict()) == c
    three = with_("algorithm", {"name": "fire", "subpopulations": 3,
                                "subpopulation_size": [8, 6, 5], "max_eval_steps": 100})  # fmt: skip
    c = Config.from_dict(three)
    assert c.algorithm.sizes == (8, 6, 5) and c.algorithm.evaluators == 8 and c.workers == 27
    with pytest.raises(ConfigError, match=r"^algorithm.subpopulations: 2, but algorithm.subp"):
        Config.from_dict(with_("algorithm", {**three["algorithm"], "subpopulations": 2}))
    plain = Config.from_dict(GOOD).to_dict()["algorithm"]
    assert plain["subpopulation_size"] == 4 and "subpopulation_sizes" not in plain


def test_subpopulation_sizes_reach_the_decider(tmp_path):
    """A run with ``subpopulation_size = [6, 4]`` has P_1 of 6 members and P_2 of 4."""
    from firepbt.api import run

    cfg = with_("algorithm", {"name": "fire", "subpopulation_size": [6, 4], "evaluators": 2,
                              "max_eval_steps": 100})  # fmt: skip
    cfg["steps"] = 100
    run(Config.from_dict(cfg), tmp_path / "run")
    start = json.loads((tmp_path / "run" / "events.jsonl").read_text().splitlines()[0])
    got = [tuple(r) for r in start["roles"]]
    assert got == [("member", 1)] * 6 + [("member", 2)] * 4 + [("evaluator", 0)] * 2


@pytest.mark.parametrize(
    "path, value, field",
    [
        ("trainable", DELETE, "trainable: required"),
        ("steps", DELETE, "steps: required"),
        ("steps", "many", "steps: expected int"),
        ("steps", 0, "steps: must be >= 1"),
        ("steps", 405, "steps: must be a multiple of eval_interval"),
        ("ready_interval", 55, "ready_interval: must be a multiple"),
        ("direction", "up", "direction: must be one of max, min"),
        ("mode", "later", "mode: must be one of sync, async"),
        ("colour", "blue", "colour: unknown field"),
        ("space", {}, "space"),
        ("space.lr", {"kind": "log_uniform", "low": -1, "high": 1}, "space.lr.low"),
        ("algorithm.name", "hyperband", "algorithm.name: must be one of"),
        ("algorithm.subpopulations", 1, "algorithm.subpopulations: FIRE PBT needs at least 2"),
        ("algorithm.evaluators", 0, "algorithm.evaluators: must be >= 1"),
        ("algorithm.subpopulation_size", 3, "algorithm.subpopulation_size: truncation"),
        # issue 12: more evaluators than parent members could ever be busy (here 4 parents)
        ("algorithm.evaluators", 5, "algorithm.evaluators: 5 evaluators but the parent"),
        # a list: one size per sub-population (the tenth pass of issue 11)
        ("algorithm.subpopulation_size", [6, 3], "algorithm.subpopulation_size: truncation"),
        ("algorithm.subpopulation_size", [6], "algorithm.subpopulation_size: expected an"),
        ("algorithm.subpopulation_size", [6, True], "algorithm.subpopulation_size: expected"),
        ("algorithm.subpopulation_size", "6", "algorithm.subpopulation_size: expected int"),
        ("algorithm.gp_refit", -0.5, "algorithm.gp_refit: must be >= 0"),
        ("algorithm.gp_workers", 0, "algorithm.gp_workers: must be >= 1"),
        ("algorithm.p_stat", 1.5, "algorithm.p_stat"),
        (
            "algorithm.max_eval_steps",
            60,
            "algorithm.max_eval_steps: max_eval_steps / eval_interval",
        ),
        ("algorithm.min_steps_before_eval", [1, 2], "algorithm.min_steps_before_eval"),
        ("algorithm.truncation", 0.9, "algorithm.truncation"),
        ("algorithm.typo", 1, "algorithm.typo: unknown field"),
        ("algorithm.parent_resample", 1.5, "algorithm.parent_resample: must be in [0, 1]"),
        ("algorithm.parent_resample", "often", "algorithm.parent_resample: expected float"),
        ("algorithm.reseed_after", -1, "algorithm.reseed_after: must be >= 0"),
        ("algorithm.reseed_after", 1.5, "algorithm.reseed_after: expected int"),
        ("algorithm.eval_patience", 0.5, "algorithm.eval_patience: must be >= 1"),
        ("algorithm.protect_steps", -5, "algorithm.protect_steps: must be >= 0"),
        ("algorithm.greedy_finish", 1.0, "algorithm.greedy_finish: must be in [0, 1)"),
        ("algorithm.greedy_finish", -0.1, "algorithm.greedy_finish: must be in [0, 1)"),
        ("algorithm.eval_stop", 1.5, "algorithm.eval_stop: must be in [0, 1)"),
        ("algorithm.parent_perturb_power", 0, "algorithm.parent_perturb_power: must be > 0"),
        ("algorithm.parent_freeze", 1.0, "algorithm.parent_freeze: must be in [0, 1)"),
        ("algorithm.rank_freed_parents", 2, "algorithm.rank_freed_parents: expected bool"),
        ("algorithm.greedy_smoothed", True, "algorithm.greedy_smoothed: changes how"),
        ("algorithm.greedy_smoothed", "yes", "algorithm.greedy_smoothed: expected bool"),
        ("algorithm.greedy_bar", "best", "algorithm.greedy_bar: changes how"),
        ("algorithm.parent_own_hparams", 1, "algorithm.parent_own_hparams: expected bool"),
        ("algorithm.greedy_bar", "max", "algorithm.greedy_bar: must be one of top, best, union"),
        (
            "algorithm.init_sampling",
            "lhs",
            "algorithm.init_sampling: must be one of iid, stratified",
        ),
        ("end", "first", "end: must be one of all, p1"),
        ("algorithm.phi", "all", "algorithm.phi: must be one of assigned, checked"),
    ],
)
def test_bad_fields_are_named(path, value, field):
    with pytest.raises(ConfigError) as err:
        Config.from_dict(with_(path, value))
    assert str(err.value).startswith(field)


def test_pbt_population_too_small():
    with pytest.raises(
        ConfigError, match="algorithm.population: truncation selection needs at least 4"
    ):
        Config.from_dict(with_("algorithm", {"name": "pbt", "population": 3}))


def test_evaluating_only_at_ready_points_is_refused():
    data = with_("eval_interval", 50)
    data["algorithm"] = dict(data["algorithm"], max_eval_steps=300)
    with pytest.raises(ConfigError, match="max_eval_steps / eval_interval = 300 / 50"):
        Config.from_dict(data)


def test_random_schedule():
    c = Config.from_dict(
        with_(
            "algorithm",
            {"name": "random", "schedule": {"param": "lr", "warmup": 0.1, "decays": [0.5]}},
        )
    )
    s = c.algorithm.schedule
    assert s.multiplier(0, 10, 400) == pytest.approx(10 / 40)
    assert s.multiplier(100, 10, 400) == 1.0
    assert s.multiplier(200, 10, 400) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="algorithm.schedule.param"):
        Config.from_dict(with_("algorithm", {"name": "random", "schedule": {"param": "momentum"}}))


def test_overrides_parse_toml_values():
    data = apply_overrides(
        {"algorithm": {}}, ["seed=3", "algorithm.name=pbt", "args.width=2.5", "mode=async"]
    )
    assert data == {
        "algorithm": {"name": "pbt"},
        "seed": 3,
        "args": {"width": 2.5},
        "mode": "async",
    }


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("stesp", 400, r"^stesp: unknown field \(did you mean 'steps'\?\)$"),
        (
            "mode",
            "asynch",
            r"^mode: must be one of sync, async; got 'asynch' \(did you mean 'async'\?\)",
        ),
        (
            "algorithm.evaluator",
            3,
            r"^algorithm.evaluator: unknown field \(did you mean 'evaluators'\?\)",
        ),
        ("algorithm.name", "fir", r"^algorithm.name: .*\(did you mean 'fire'\?\)"),
        ("space.lr.kind", "loguniform", r"^space.lr.kind: .*\(did you mean 'log_uniform'\?\)"),
        ("space.lr.hihg", 1.0, r"^space.lr.hihg: .*\(did you mean 'high'\?\)"),
    ],
)
def test_typos_get_a_did_you_mean(path, value, message):
    if path.startswith("space."):  # with_ copies one level only: the space by hand
        data = with_("space", {"lr": {**GOOD["space"]["lr"], path.split(".")[-1]: value}})
    else:
        data = with_(path, value)
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(data)


def test_no_suggestion_for_a_name_unlike_any_field():
    with pytest.raises(ConfigError, match=r"^zzz: unknown field$"):
        Config.from_dict(with_("zzz", 1))


def test_set_algorithm_name_switches_and_says_what_it_dropped():
    notes = []
    data = {"algorithm": dict(GOOD["algorithm"], truncation=0.2)}
    data = apply_overrides(data, ["algorithm.name=pbt"], notes)
    assert data["algorithm"] == {"name": "pbt", "truncation": 0.2}  # shared settings stay
    assert notes == [
        "--set algorithm.name=pbt: dropped algorithm.subpopulation_size, algorithm.evaluators, "
        "algorithm.max_eval_steps (settings of fire that pbt does not have)"
    ]
    config = Config.from_dict({**GOOD, "algorithm": data["algorithm"]})
    assert config.algorithm.name == "pbt" and config.algorithm.truncation == 0.2
    # the other way, with the new algorithm's own setting given too
    notes = []
    data = apply_overrides(
        {"algorithm": {"name": "pbt", "population": 8}},
        ["algorithm.name=fire", "algorithm.subpopulation_size=4"],
        notes,
    )
    assert data["algorithm"] == {"name": "fire", "subpopulation_size": 4}
    assert "dropped algorithm.population" in notes[0]
    # an unknown field of the old algorithm is not silently dropped
    data = apply_overrides(
        {"algorithm": {"name": "pbt", "populaton": 8}}, ["algorithm.name=random"]
    )
    assert data["algorithm"] == {"name": "random", "populaton": 8}


def test_config_from_dict_is_the_python_builder():
    """The README's builder example: a plain dict, validated like a TOML file."""
    config = Config.from_dict(
        {
            "trainable": "toys:Climb",
            "steps": 400,
            "space": {"lr": {"kind": "log_uniform", "low": 1e-3, "high": 1.0}},
            "algorithm": {"name": "pbt", "population": 8},
            "eval_interval": 10,
            "ready_interval": 50,
        }
    )
    assert config.algorithm.name == "pbt" and config.space.names == ("lr",)
