"""The pure rules of task metrics: what a report may hold, series and downsampling."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_orch.core import metrics
from jupyter_orch.core.errors import SpecError


def test_a_report_becomes_a_point() -> None:
    point = metrics.make_point(5.0, 3, None, {"loss": 0.25, "epoch": 1})
    assert point == [5.0, 3, "training", {"loss": 0.25, "epoch": 1}]
    assert metrics.make_point(5, None, "validation", {"acc": 1})[1:3] == [None, "validation"]


def test_nan_and_infinity_are_gaps() -> None:
    point = metrics.make_point(0, 1, None, {"a": float("nan"), "b": float("inf"), "c": 2.0})
    assert point[3] == {"a": None, "b": None, "c": 2.0}


class _NumpyLike:
    def __float__(self) -> float:
        return 0.5


def test_number_like_values_and_steps_are_taken() -> None:
    class Index:
        def __index__(self) -> int:
            return 7

    assert metrics.make_point(0, Index(), None, {"a": _NumpyLike()})[1:] == [7, "training", {"a": 0.5}]


@pytest.mark.parametrize(
    ("step", "group", "values", "field"),
    [
        (-1, None, {"a": 1}, "step"),
        (1.5, None, {"a": 1}, "step"),
        (True, None, {"a": 1}, "step"),
        (1, "has space", {"a": 1}, "group"),
        (1, "", {"a": 1}, "group"),
        (1, "g" * 65, {"a": 1}, "group"),
        (1, None, {}, "metrics"),
        (1, None, {f"m{i}": i for i in range(101)}, "metrics"),
        (1, None, {"a": "0.5"}, "a"),
        (1, None, {"a": True}, "a"),
        (1, None, {"a": None}, "a"),
        (1, None, {"step": 1}, "name"),
        (1, None, {"x" * 101: 1}, "name"),
        (1, None, {"bad\nname": 1}, "name"),
    ],
)
def test_a_bad_report_names_its_field(
    step: object, group: object, values: dict[str, object], field: str
) -> None:
    with pytest.raises(SpecError) as info:
        metrics.make_point(0, step, group, values)
    assert info.value.field == field


def test_parse_point_drops_what_a_worker_should_not_send() -> None:
    assert metrics.parse_point([1.0, 2, "training", {"a": 1}]) == [1.0, 2, "training", {"a": 1}]
    assert metrics.parse_point([1.0, 2, "validation", {"a": None}]) == [1.0, 2, "validation", {"a": None}]
    for raw in (
        None,
        [],
        [1, 2, "g"],
        ["t", 1, "g", {"a": 1}],
        [1, -2, "g", {"a": 1}],
        [1, 2, "g", {"a": "x"}],
    ):
        assert metrics.parse_point(raw) is None


def test_series_split_by_name_and_group_with_offsets_as_x() -> None:
    points = [
        (0, 0, [0.0, None, "training", {"loss": 3.0}]),
        (0, 1, [0.0, None, "training", {"loss": 2.0, "lr": 0.1}]),
        (0, 2, [0.0, 10, "validation", {"loss": 2.5}]),
        (1, 0, [0.0, 4, "training", {"loss": 1.0}]),
    ]
    merged = metrics.series(points)
    assert [(s.name, s.group, s.x, s.y) for s in merged] == [
        ("loss", "training", [0.0, 1.0, 4.0], [3.0, 2.0, 1.0]),
        ("lr", "training", [1.0], [0.1]),
        ("loss", "validation", [10.0], [2.5]),
    ]
    per = metrics.series(points, per_attempt=True, names=["loss"], group="training")
    assert [(s.attempt, s.y) for s in per] == [(0, [3.0, 2.0]), (1, [1.0])]
    assert merged[0].summary() == {"last": 1.0, "min": 1.0, "max": 3.0}


def test_downsampling_keeps_the_ends_and_the_peaks() -> None:
    xs = [float(i) for i in range(10_000)]
    ys: list[float | None] = [math.sin(i / 500) for i in range(10_000)]
    ys[6000] = 50.0  # a spike the plot must not lose
    dx, dy = metrics.downsample(xs, ys, 100)
    assert len(dx) == len(dy) == 100
    assert (dx[0], dx[-1]) == (0.0, 9999.0)
    assert 50.0 in dy
    assert dx == sorted(dx)


def test_short_series_are_untouched_and_gaps_dropped_when_cut() -> None:
    assert metrics.downsample([1.0, 2.0], [None, 1.0], 10) == ([1.0, 2.0], [None, 1.0])
    xs = [float(i) for i in range(50)]
    ys = [None if i % 2 else float(i) for i in range(50)]
    dx, dy = metrics.downsample(xs, ys, 10)
    assert None not in dy and len(dx) == 10


@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=0, max_size=300),
    st.integers(3, 50),
)
def test_downsample_never_grows_and_keeps_order(values: list[float], n: int) -> None:
    xs = [float(i) for i in range(len(values))]
    dx, dy = metrics.downsample(xs, list(values), n)
    assert len(dx) == len(dy) <= max(n, 0) or len(values) <= n
    assert dx == sorted(dx)
    assert set(dy) <= set(values)


def test_a_record_is_flat() -> None:
    assert metrics.record(2, 7, [1.5, None, "training", {"loss": 0.1}]) == {
        "attempt": 2,
        "offset": 7,
        "ts": 1.5,
        "step": None,
        "group": "training",
        "loss": 0.1,
    }
