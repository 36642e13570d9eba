"""Schedules fire once, for the latest missed time, with an injected clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jupyter_orch.core.errors import SpecError
from jupyter_orch.core.schedule import check_cron, due


def at(day, hour, minute=0):
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


def test_not_yet_then_on_time():
    firing = due("0 3 * * *", last=at(20, 12), now=at(21, 2, 59))
    assert firing.due is None and firing.next == at(21, 3)
    firing = due("0 3 * * *", last=at(20, 12), now=at(21, 3, 0))
    assert firing.due == at(21, 3) and firing.next == at(22, 3)


def test_a_second_look_within_the_firing_minute_does_not_fire_again():
    fired = due("0 3 * * *", last=at(20, 12), now=at(21, 3).replace(second=30))
    assert fired.due == at(21, 3)  # the firing time is the whole minute
    again = due("0 3 * * *", last=fired.due, now=at(21, 3).replace(second=45))
    assert again.due is None


def test_a_server_down_for_days_catches_up_once_for_the_latest_time():
    firing = due("0 3 * * *", last=at(1, 3), now=at(20, 9))
    assert firing.due == at(20, 3) and firing.next == at(21, 3)  # 19 missed days: one firing
    again = due("0 3 * * *", last=firing.due, now=at(20, 9, 30))  # after firing: nothing more today
    assert again.due is None


def test_bad_expressions_are_named():
    assert check_cron(" */5 * * * * ") == "*/5 * * * *"
    with pytest.raises(SpecError, match="'every day' is not a cron expression") as info:
        check_cron("every day")
    assert info.value.field == "cron"


def test_a_minutely_schedule_down_for_a_year_is_one_firing_computed_at_once():
    firing = due("* * * * *", last=datetime(2025, 11, 1, tzinfo=timezone.utc), now=at(20, 9, 30))
    assert firing.due == at(20, 9, 30) and firing.next == at(20, 9, 31)
