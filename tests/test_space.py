"""Search space: sampling, explore (SPEC "PBT inside every sub-population"), validation."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from firepbt.core.space import (
    DEFAULT_PERTURB,
    Choice,
    Int,
    LogUniform,
    SearchSpace,
    SpaceError,
    Uniform,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def lr_space(**extra: Any) -> SearchSpace:
    return SearchSpace({"lr": LogUniform(1e-4, 1.1, init=(0.9, 1.1), **extra)})


def test_sample_stays_inside_init() -> None:
    space, g = lr_space(), rng()
    values = [space.sample(g)["lr"] for _ in range(500)]
    assert all(0.9 <= v <= 1.1 for v in values)
    assert max(values) - min(values) > 0.1  # spread over the init range, not a constant


def test_explore_moves_out_towards_the_bounds_and_stays_inside() -> None:
    space, g = lr_space(), rng(1)
    population = [space.sample(g) for _ in range(16)]
    seen: list[float] = []
    for _ in range(40):
        population = [space.explore(h, g) for h in population]
        seen += [h["lr"] for h in population]
    assert any(v < 0.9 for v in seen)
    assert any(v < 0.01 for v in seen)  # far below the init range after many explores
    assert all(1e-4 <= v <= 1.1 for v in seen)
    assert 1.1 in seen  # clipped exactly onto high


def test_explore_multiplies_by_a_factor_from_perturb() -> None:
    space, g = SearchSpace({"x": Uniform(0.0, 100.0)}), rng(2)
    got = {space.explore({"x": 10.0}, g)["x"] for _ in range(200)}
    assert got == {10.0 * f for f in DEFAULT_PERTURB}


def test_explore_clips_at_high_and_low() -> None:
    up = SearchSpace({"x": LogUniform(0.1, 1.0, perturb=(2.0,))})
    assert up.explore({"x": 0.8}, rng())["x"] == 1.0
    down = SearchSpace({"x": LogUniform(0.1, 1.0, perturb=(0.5,))})
    assert down.explore({"x": 0.15}, rng())["x"] == 0.1


@pytest.mark.parametrize(
    ("value", "factor", "expected"),
    [(10, 1.25, 13), (7, 1.25, 9), (7, 0.8, 6), (3, 0.5, 2), (1, 0.8, 1), (60, 2.0, 100)],
)
def test_int_explore_rounds_half_up_and_clips(value: int, factor: float, expected: int) -> None:
    space = SearchSpace({"n": Int(1, 100, perturb=(factor,))})
    out = space.explore({"n": value}, rng())["n"]
    assert out == expected
    assert type(out) is int


@pytest.mark.parametrize(
    ("start", "allowed"),
    [("a", {"b"}), ("d", {"c"}), ("b", {"a", "c"}), ("c", {"b", "d"})],
)
def test_choice_moves_to_a_neighbour(start: str, allowed: set[str]) -> None:
    space, g = SearchSpace({"opt": Choice(("a", "b", "c", "d"))}), rng(3)
    got = {space.explore({"opt": start}, g)["opt"] for _ in range(200)}
    assert got == allowed


def test_single_choice_is_unchanged_by_explore() -> None:
    space = SearchSpace({"opt": Choice(("only",))})
    assert space.explore({"opt": "only"}, rng())["opt"] == "only"


def test_resample_probability_one_draws_from_the_full_prior() -> None:
    space, g = lr_space(resample_probability=1.0), rng(4)
    values = np.array([space.explore({"lr": 1.0}, g)["lr"] for _ in range(4000)])
    assert values.min() >= 1e-4 and values.max() <= 1.1
    # log-uniform over [1e-4, 1.1]: P(x < 1e-2) = log(1e2) / log(1.1e4) ~ 0.494
    expected = math.log(100) / math.log(1.1e4)
    assert abs(np.mean(values < 1e-2) - expected) < 0.03
    assert not set(values) & {0.5, 0.8, 1.1}  # no perturbed values of 1.0


def test_sample_prior_uses_full_bounds_and_all_choices() -> None:
    space = SearchSpace(
        {"lr": LogUniform(1e-4, 1.1, init=(0.9, 1.1)), "c": Choice((1, 2, 3), init=(2,))}
    )
    g = rng(5)
    prior = [space.sample_prior(g) for _ in range(500)]
    assert min(h["lr"] for h in prior) < 0.01
    assert {h["c"] for h in prior} == {1, 2, 3}
    assert {space.sample(g)["c"] for _ in range(50)} == {2}


def test_int_sampling_is_inclusive() -> None:
    space, g = SearchSpace({"n": Int(1, 3)}), rng(6)
    assert {space.sample(g)["n"] for _ in range(200)} == {1, 2, 3}


MIXED = {
    "lr": {"kind": "log_uniform", "low": 1e-4, "high": 1.1, "init": [0.9, 1.1]},
    "mom": {"kind": "uniform", "low": 0, "high": 1, "resample_probability": 0.25},
    "batch": {"kind": "int", "low": 8, "high": 512, "perturb": [0.5, 2.0]},
    "opt": {"kind": "choice", "choices": ["sgd", "adam", "rmsprop"], "init": ["adam"]},
}


def test_seeded_generator_is_deterministic() -> None:
    space = SearchSpace.from_dict(MIXED)

    def run(seed: int) -> list[dict[str, Any]]:
        g = rng(seed)
        h = space.sample(g)
        out = [h]
        for _ in range(20):
            h = space.explore(h, g)
            out.append(h)
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_stream_consumption_does_not_depend_on_values() -> None:
    space = SearchSpace.from_dict(MIXED)
    a, b = rng(9), rng(9)
    space.explore({"lr": 1e-4, "mom": 0.0, "batch": 8, "opt": "sgd"}, a)
    space.explore({"lr": 0.5, "mom": 0.7, "batch": 100, "opt": "adam"}, b)
    assert a.bit_generator.state == b.bit_generator.state


def test_explore_draws_the_coin_then_one_draw_per_param() -> None:
    space = SearchSpace({"x": Uniform(0.0, 10.0), "c": Choice(("a", "b"))})
    g, ref = rng(11), rng(11)
    out = space.explore({"x": 1.0, "c": "a"}, g)
    coin_x, k, coin_c, side = ref.random(), ref.integers(4), ref.random(), ref.integers(2)
    assert coin_x >= 0 and coin_c >= 0 and side in (0, 1)
    assert out == {"x": DEFAULT_PERTURB[int(k)], "c": "b"}
    assert g.bit_generator.state == ref.bit_generator.state


def test_samples_are_plain_json_types() -> None:
    space, g = SearchSpace.from_dict(MIXED), rng(10)
    for h in (space.sample(g), space.sample_prior(g), space.explore(space.sample(g), g)):
        assert [type(h[k]) for k in space.names] == [float, float, int, str]
        json.dumps(h)
        space.validate(h)


def test_round_trip_and_declared_order() -> None:
    space = SearchSpace.from_dict(MIXED)
    d = space.to_dict()
    assert list(d) == ["lr", "mom", "batch", "opt"] == list(space.names) == list(space)
    again = SearchSpace.from_dict(json.loads(json.dumps(d)))
    assert again == space and again.to_dict() == d
    assert d["mom"] == {
        "kind": "uniform",
        "low": 0.0,
        "high": 1.0,
        "perturb": list(DEFAULT_PERTURB),
        "resample_probability": 0.25,
    }
    assert len(space) == 4 and space["opt"] == Choice(("sgd", "adam", "rmsprop"), init=("adam",))
    assert SearchSpace.from_dict({"lr": {**MIXED["lr"], "high": 2.0}}) != SearchSpace.from_dict(
        {"lr": MIXED["lr"]}
    )


def lr(**kw: Any) -> dict[str, Any]:
    return {"lr": {"kind": "log_uniform", "low": 1e-3, "high": 1.0, **kw}}


@pytest.mark.parametrize(
    ("table", "prefix"),
    [
        (lr(low=1.0, high=1.0), "space.lr.low: must be < high"),
        ({"x": {"kind": "uniform", "low": 2, "high": 1}}, "space.x.low: must be < high"),
        (lr(low=-1), "space.lr.low: must be > 0 for log_uniform (got -1)"),
        (lr(init=[0.5, 2.0]), "space.lr.init:"),
        (lr(init=[0.5, 0.1]), "space.lr.init:"),
        (lr(init=[0.5]), "space.lr.init:"),
        (lr(perturb=[]), "space.lr.perturb:"),
        (lr(perturb=[0.5, -2.0]), "space.lr.perturb:"),
        (lr(perturb=[0.5, "x"]), "space.lr.perturb:"),
        (lr(perturb=0.5), "space.lr.perturb:"),
        (lr(resample_probability=1.5), "space.lr.resample_probability:"),
        (lr(high=math.inf), "space.lr.high: must be finite"),
        (lr(high=True), "space.lr.high: must be a number (got bool"),
        (lr(low="0.1"), "space.lr.low: must be a number"),
        (lr(kind="loguniform"), "space.lr.kind: unknown kind 'loguniform'"),
        ({"lr": {"low": 0.1, "high": 1.0}}, "space.lr.kind: required"),
        (lr(lower=0.1), "space.lr.lower: unknown key"),
        ({"lr": {"kind": "log_uniform", "high": 1.0}}, "space.lr.low: required"),
        ({"n": {"kind": "int", "low": 1.5, "high": 4}}, "space.n.low: must be an integer"),
        ({"c": {"kind": "choice"}}, "space.c.choices: required"),
        ({"c": {"kind": "choice", "choices": []}}, "space.c.choices: at least one"),
        ({"c": {"kind": "choice", "choices": ["a", "a"]}}, "space.c.choices: duplicate"),
        ({"c": {"kind": "choice", "choices": ["a"], "init": ["b"]}}, "space.c.init:"),
        ({"c": {"kind": "choice", "choices": ["a"], "low": 1}}, "space.c.low: unknown key"),
        ({"lr": 0.1}, "space.lr: expected a table"),
        ({}, "space: at least one hyperparameter is required"),
    ],
)
def test_validation_names_the_field(table: dict[str, Any], prefix: str) -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict(table)
    assert str(info.value).startswith(prefix), str(info.value)


def test_unknown_kind_lists_the_valid_kinds() -> None:
    with pytest.raises(SpaceError, match="log_uniform, uniform, int, choice"):
        SearchSpace.from_dict(lr(kind="gauss"))


def test_constructor_validates_dataclasses() -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace({"lr": LogUniform(-1, 1)})
    assert str(info.value) == "space.lr.low: must be > 0 for log_uniform (got -1)"
    with pytest.raises(SpaceError, match=r"^space\.m: expected"):
        SearchSpace({"m": {"kind": "uniform"}})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("hparams", "prefix"),
    [
        ({"lr": 0.5}, "hparams.n: missing"),
        ({"lr": 2.0, "n": 1}, "hparams.lr: 2.0 is outside"),
        ({"lr": 0.5, "n": 1.0}, "hparams.n: must be an integer"),
        ({"lr": 0.5, "n": 1, "c": "z"}, "hparams.c: 'z' is not one of"),
        ({"lr": 0.5, "n": 1, "c": "a", "extra": 1}, "hparams.extra: not in the search space"),
    ],
)
def test_validate_and_explore_reject_bad_hparams(hparams: dict[str, Any], prefix: str) -> None:
    space = SearchSpace({"lr": LogUniform(1e-3, 1.0), "n": Int(1, 4), "c": Choice(("a", "b"))})
    hparams = {"c": "a", **hparams}
    for call in (space.validate, lambda h: space.explore(h, rng())):
        with pytest.raises(SpaceError) as info:
            call(hparams)
        assert str(info.value).startswith(prefix), str(info.value)


def _slices(values: list[float], low: float, high: float, n: int, log: bool) -> list[int]:
    """The index of the equal-probability slice of [low, high] each value falls in."""
    f = (lambda v: math.log(v)) if log else (lambda v: v)
    return sorted(min(int((f(v) - f(low)) / (f(high) - f(low)) * n), n - 1) for v in values)


@pytest.mark.parametrize("n", [1, 4, 8, 13])
def test_stratified_draws_put_one_in_every_slice(n: int) -> None:
    # issue 11: i.i.d. draws left a parent sub-population of 8 entirely in the lowest
    # third of the learning rate's log-range; a Latin hypercube cannot
    space = SearchSpace(
        {
            "lr": LogUniform(0.01, 1.0),
            "wd": Uniform(-1.0, 3.0),
            "m": LogUniform(1e-4, 1.0, init=(0.1, 0.5)),
        }
    )
    for seed in range(20):
        draws = space.sample_stratified(n, rng(seed))
        assert len(draws) == n
        for d in draws:
            space.validate(d)
        assert _slices([d["lr"] for d in draws], 0.01, 1.0, n, log=True) == list(range(n))
        assert _slices([d["wd"] for d in draws], -1.0, 3.0, n, log=False) == list(range(n))
        assert _slices([d["m"] for d in draws], 0.1, 0.5, n, log=True) == list(range(n))


def test_stratified_draws_pair_slices_independently_and_by_seed() -> None:
    space = SearchSpace({"a": Uniform(0.0, 1.0), "b": Uniform(0.0, 1.0)})
    draws = space.sample_stratified(16, rng(3))
    assert draws == space.sample_stratified(16, rng(3))
    assert draws != space.sample_stratified(16, rng(4))
    # the slices of a and b are matched by independent permutations, not in lockstep
    pairs = [(int(d["a"] * 16), int(d["b"] * 16)) for d in draws]
    assert any(i != j for i, j in pairs)


def test_stratified_draws_balance_integers_and_choices() -> None:
    space = SearchSpace(
        {"k": Int(1, 3), "opt": Choice(("sgd", "adam", "lion", "rms"), init=("sgd", "adam"))}
    )
    draws = space.sample_stratified(7, rng(0))
    counts_k = [sum(d["k"] == v for d in draws) for v in (1, 2, 3)]
    assert sorted(counts_k) == [2, 2, 3]  # floor(7/3) or ceil(7/3) each
    counts_opt = [sum(d["opt"] == v for d in draws) for v in ("sgd", "adam")]
    assert sorted(counts_opt) == [3, 4]


def test_stratified_draws_refuse_an_empty_population() -> None:
    with pytest.raises(SpaceError, match="n must be >= 1"):
        lr_space().sample_stratified(0, rng())
