"""Search spaces (core/space.py): every problem is a SpecError naming ``space.<name>``; a grid
gives its combinations in order; sampling is deterministic per seed and within bounds."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_orch.core.errors import SpecError
from jupyter_orch.core.space import (
    MAX_NAMES,
    Space,
    choice,
    loguniform,
    parse_space,
    quniform,
    randint,
    uniform,
)


def _error(raw: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_space(raw)
    return info.value


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"lr": []}, "space.lr", "empty list"),
        ({"lr": {"uniform": [1, 1]}}, "space.lr", "low < high"),
        ({"lr": {"uniform": [2, 1]}}, "space.lr", "low < high"),
        ({"lr": {"normal": [0, 1]}}, "space.lr", "unknown distribution 'normal'"),
        ({"lr": {"loguniform": [0, 1]}}, "space.lr", "0 < low"),
        ({"lr": {"loguniform": [-1, 1]}}, "space.lr", "0 < low"),
        ({"lr": {"uniform": [0, float("nan")]}}, "space.lr", "finite numbers"),
        ({"lr": {"uniform": [0, float("inf")]}}, "space.lr", "finite numbers"),
        ({"lr": {"uniform": [0, "1"]}}, "space.lr", "finite numbers"),
        ({"lr": {"uniform": [True, 2]}}, "space.lr", "finite numbers"),
        ({"lr": {"uniform": [0, 1, 2]}}, "space.lr", "takes [low, high]"),
        ({"lr": {"uniform": 1}}, "space.lr", "list of arguments"),
        ({"lr": {"uniform": [0, 1], "log": True}}, "space.lr", "one key"),
        ({"n": {"randint": [1, 2.5]}}, "space.n", "whole numbers"),
        ({"n": {"randint": [3, 3]}}, "space.n", "low < high"),
        ({"q": {"quniform": [0, 1, 0]}}, "space.q", "q > 0"),
        ({"q": {"quniform": [0.1, 0.2, 1]}}, "space.q", "no multiple"),
        ({"q": {"quniform": [0, 1]}}, "space.q", "takes [low, high, q]"),
        ({"opt": {"choice": []}}, "space.opt", "at least one value"),
        ({"opt": {"choice": [1, object()]}}, "space.opt", "not a JSON value"),
        ({"x": float("nan")}, "space.x", "finite number"),
        ({"x": [1, float("inf")]}, "space.x", "finite number"),
        ({"x": {1, 2}}, "space.x", "a set has no order"),
        ({"x": b"bytes"}, "space.x", "not a JSON value"),
        ({"x": ["a\0b"]}, "space.x", "without NUL"),
        ({"x": [{1: "a"}]}, "space.x", "keys must be strings"),
        ({"1x": 1}, "space.1x", "parameter name"),
        ({"a b": 1}, "space.a b", "parameter name"),
        ({"": 1}, "space.", "parameter name"),
        ({3: 1}, "space", "parameter name"),
        ({}, "space", "empty"),
        ([1, 2], "space", "mapping"),
        ({f"p{i}": 1 for i in range(MAX_NAMES + 1)}, "space", f"at most {MAX_NAMES}"),
    ],
)
def test_each_problem_names_its_field(raw: Any, field: str, words: str) -> None:
    err = _error(raw)
    assert err.field == field
    assert words in err.message, err.message
    if field != "space" and words != "parameter name":
        assert err.message.startswith(f"{field}: "), err.message  # the message says where too


def test_helpers_build_the_raw_dicts_and_refuse_bad_calls() -> None:
    assert uniform(0, 1) == {"uniform": [0, 1]}
    assert loguniform(1e-4, 1e-1) == {"loguniform": [1e-4, 1e-1]}
    assert randint(1, 10) == {"randint": [1, 10]}
    assert quniform(0, 1, 0.25) == {"quniform": [0, 1, 0.25]}
    assert choice(("adam", "sgd")) == {"choice": ["adam", "sgd"]}
    for bad in (lambda: uniform(1, 0), lambda: loguniform(0, 1), lambda: choice([])):
        with pytest.raises(SpecError):
            bad()
    space = parse_space({"lr": loguniform(1e-4, 1e-1), "opt": choice(["adam", "sgd"]), "n": randint(1, 4)})
    assert space.names == ["lr", "opt", "n"]
    assert not space.is_grid()


def test_a_grid_gives_every_combination_in_product_order() -> None:
    space = parse_space({"lr": [0.1, 0.01], "epochs": 5, "opt": ["adam", "sgd", "rmsprop"]})
    assert space.is_grid()
    assert space.grid_size() == 6
    got = list(space.trials(None))
    want = [
        {"lr": lr, "epochs": 5, "opt": opt}
        for lr, opt in itertools.product([0.1, 0.01], ["adam", "sgd", "rmsprop"])
    ]
    assert got == want
    assert list(space.trials(4)) == want[:4]  # capped
    assert list(space.trials(100)) == want  # a cap above the grid: the grid
    assert space.count(None) == 6 and space.count(4) == 4


def test_constants_only_is_one_trial_and_lists_of_lists_are_axes_of_lists() -> None:
    space = parse_space({"name": "run", "layers": [[64, 64], (32,)], "x": None, "on": True})
    assert space.grid_size() == 2
    assert list(space.trials(None)) == [
        {"name": "run", "layers": [64, 64], "x": None, "on": True},
        {"name": "run", "layers": [32], "x": None, "on": True},
    ]
    assert list(parse_space({"a": 1}).trials(None)) == [{"a": 1}]


def test_a_random_space_needs_max_trials() -> None:
    space = parse_space({"lr": uniform(0, 1)})
    with pytest.raises(SpecError) as info:
        space.trials(None)
    assert info.value.field == "max_trials"
    assert "lr" in info.value.message
    for bad in (0, -1, 1.5, True):
        with pytest.raises(SpecError) as info:
            space.trials(bad)  # type: ignore[arg-type]
        assert info.value.field == "max_trials"


def test_sampled_trials_cycle_through_the_grid_and_are_deterministic() -> None:
    space = parse_space({"opt": ["adam", "sgd"], "lr": loguniform(1e-5, 1e-1), "seed": 7})
    a = list(space.trials(10, seed=3))
    assert len(a) == 10
    assert [t["opt"] for t in a] == ["adam", "sgd"] * 5
    assert all(t["seed"] == 7 for t in a)
    assert a == list(space.trials(10, seed=3))
    assert a != list(space.trials(10, seed=4))
    assert len({t["lr"] for t in a}) == 10
    # trial n does not depend on how many come before or after it
    assert list(space.trials(4, seed=3)) == a[:4]
    assert space.trial(7, 3) == a[7]


def test_choice_samples_and_quniform_and_randint_hit_their_grid() -> None:
    space = parse_space(
        {
            "opt": {"choice": ["adam", "sgd", {"name": "lamb"}]},
            "n": {"randint": [1, 4]},
            "drop": {"quniform": [0, 0.5, 0.1]},
            "batch": {"quniform": [16, 128, 16]},
        }
    )
    trials = list(space.trials(400, seed=0))
    assert {json.dumps(t["opt"]) for t in trials} == {'"adam"', '"sgd"', '{"name": "lamb"}'}
    assert {t["n"] for t in trials} == {1, 2, 3}  # high exclusive
    assert {t["drop"] for t in trials} == {0.0, 0.1, 0.2, 0.3, 0.4, 0.5}
    assert {t["batch"] for t in trials} == set(range(16, 129, 16))
    assert all(isinstance(t["batch"], int) for t in trials)


def test_to_dict_round_trips_through_json() -> None:
    raw = {
        "lr": {"loguniform": [1e-5, 0.1]},
        "wd": {"uniform": [0, 0.1]},
        "n": {"randint": [1, 4]},
        "q": {"quniform": [0, 1, 0.25]},
        "opt": {"choice": ["adam", "sgd"]},
        "layers": [[64], [128, 128]],
        "name": "x",
    }
    space = parse_space(raw)
    assert space.to_dict() == raw
    again = parse_space(json.loads(json.dumps(space.to_dict())))
    assert again == space
    assert list(again.trials(20, seed=9)) == list(space.trials(20, seed=9))
    assert parse_space(space) is space


# --- properties ---------------------------------------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-8, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def bounded(draw: st.DrawFn) -> tuple[str, list[float]]:
    kind = draw(st.sampled_from(["uniform", "loguniform", "randint", "quniform"]))
    if kind == "randint":
        first = draw(st.integers(-1000, 1000))
        return kind, [first, draw(st.integers(first + 1, first + 1000))]
    if kind == "loguniform":
        low = draw(positive)
        return kind, [low, draw(positive.filter(lambda h: h > low * (1 + 1e-9)))]
    low = draw(finite)
    high = draw(finite.filter(lambda h: h > low + 1e-6))
    if kind == "uniform":
        return kind, [low, high]
    q = draw(st.floats(1e-3, 1e3).filter(lambda q: math.floor(high / q) >= math.ceil(low / q)))
    return kind, [low, high, q]


@settings(max_examples=200, deadline=None)
@given(bounded(), st.integers(-(2**40), 2**40))
def test_samples_stay_within_bounds_and_repeat_per_seed(dist: tuple[str, list[float]], seed: int) -> None:
    kind, args = dist
    space = parse_space({"x": {kind: args}})
    values = [t["x"] for t in space.trials(20, seed=seed)]
    assert values == [t["x"] for t in space.trials(20, seed=seed)]
    low, high = args[0], args[1]
    for v in values:
        if kind == "randint":
            assert isinstance(v, int) and low <= v < high
        else:
            assert low <= v <= high, (v, args)
        if kind == "quniform":
            k = v / args[2]
            assert abs(k - round(k)) < 1e-6 * max(1.0, abs(k)), (v, args)


clean_text = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=5)
space_values = st.one_of(
    st.lists(st.integers() | clean_text | st.booleans(), min_size=1, max_size=4),
    st.builds(lambda a, b: {"uniform": sorted([a, a + b])}, finite, positive),
    st.builds(lambda a, b: {"loguniform": [a, a * (1 + b)]}, positive, st.floats(1e-3, 10)),
    st.builds(lambda a, b: {"randint": [a, a + b]}, st.integers(-100, 100), st.integers(1, 100)),
    st.builds(lambda v: {"choice": v}, st.lists(st.integers() | st.none(), min_size=1, max_size=4)),
    st.integers() | clean_text | st.none() | finite,
)
names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(names, space_values, min_size=1, max_size=5), st.integers(0, 10**6))
def test_any_valid_space_round_trips(raw: dict[str, Any], seed: int) -> None:
    space = parse_space(raw)
    again = parse_space(json.loads(json.dumps(space.to_dict())))
    assert again == space
    n = 5 if not space.is_grid() else None
    assert list(again.trials(n, seed)) == list(space.trials(n, seed))
    for trial in space.trials(3, seed):
        assert list(trial) == list(raw)
        json.dumps(trial, allow_nan=False)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=4))
def test_any_json_is_a_space_or_a_spec_error(raw: dict[str, Any]) -> None:
    try:
        space = parse_space(raw)
    except SpecError as err:
        assert err.field is not None and err.field.startswith("space")
        return
    assert isinstance(space, Space)
    json.dumps(space.to_dict(), allow_nan=False)


def test_the_search_core_imports_nothing_beyond_the_standard_library() -> None:
    code = (
        "import json, sys; import jupyter_orch.core.space, jupyter_orch.core.search; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    loaded = {name.split(".")[0] for name in json.loads(proc.stdout)}
    assert not loaded & {"numpy", "tornado", "sqlalchemy", "IPython", "hypothesis"}, loaded
