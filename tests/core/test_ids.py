"""Task ids: 26 lower-case Crockford base32 characters, time-ordered, unique."""

from __future__ import annotations

import re
import time

import pytest

from jupyter_orch.core.ids import is_valid_id, new_id

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def test_shape() -> None:
    value = new_id()
    assert isinstance(value, str)
    assert len(value) == 26
    assert set(value) <= set(CROCKFORD)
    assert is_valid_id(value)


def test_many_are_unique_and_valid() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(is_valid_id(i) for i in ids)
    assert all(len(i) == 26 for i in ids)


def test_ids_sort_by_time() -> None:
    base = 1_700_000_000.0
    ids = [new_id(base + step / 1000) for step in range(0, 5000, 7)]
    assert ids == sorted(ids)
    # far apart in time too
    times = [0.001, 1.0, 1e6, 1_700_000_000.123, 4_000_000_000.0]
    ids = [new_id(t) for t in times]
    assert ids == sorted(ids)


def test_later_calls_sort_after_earlier_ones() -> None:
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    assert first < second


def test_the_time_prefix_is_the_millisecond() -> None:
    # 48 bits of milliseconds take the first 10 characters (50 bits, the top 2 are zero)
    now = 1_700_000_000.5
    ms = int(now * 1000)
    prefix = new_id(now)[:10]
    assert int("".join(format(CROCKFORD.index(c), "05b") for c in prefix), 2) == ms
    same_ms = {new_id(now)[:10] for _ in range(50)}
    assert same_ms == {prefix}
    assert new_id(0)[:10] == "0" * 10


@pytest.mark.parametrize(
    "value",
    [
        None,
        123,
        b"0" * 26,
        "",
        "0" * 25,
        "0" * 27,
        "01HZY3K6V0Q5N3C2M8ZJ7T9R4X",  # upper case
        "01hzy3k6v0q5n3c2m8zj7t9r4i",  # i is not in the alphabet
        "01hzy3k6v0q5n3c2m8zj7t9r4l",  # nor l
        "01hzy3k6v0q5n3c2m8zj7t9r4o",  # nor o
        "01hzy3k6v0q5n3c2m8zj7t9r4u",  # nor u
        "01hzy3k6v0q5n3c2m8zj7t9r4-",
        " 01hzy3k6v0q5n3c2m8zj7t9r4",
        "01hzy3k6v0q5n3c2m8zj7t9r4x\n",
        "../../etc/passwd/aaaaaaaaa",
    ],
)
def test_invalid_ids(value: object) -> None:
    assert not is_valid_id(value)


def test_valid_handmade_ids() -> None:
    assert is_valid_id("0" * 26)
    assert is_valid_id("z" * 26)
    assert is_valid_id("01hzy3k6v0q5n3c2m8zj7t9r4x")
    assert all(is_valid_id(c * 26) for c in CROCKFORD)
    assert re.fullmatch(r"[0-9a-z]{26}", new_id())


def test_ids_made_in_one_burst_only_grow() -> None:
    ids = [new_id() for _ in range(5000)]  # many per millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
