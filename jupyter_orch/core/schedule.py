"""When a scheduled workflow fires: cron expressions (croniter), with the rule that a
server which was down across one or many firing times fires once when it is back (catch up
once, never a flood). Pure: the clock is an argument, so tests pass times, not waits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from croniter import CroniterBadCronError, croniter

from .errors import SpecError


@dataclass(frozen=True)
class Firing:
    due: datetime | None  # fire now for this time (the latest one not after now), or None
    next: datetime  # the firing time after now


def check_cron(expression: str) -> str:
    """The expression, checked; ``SpecError`` naming it when croniter cannot read it."""
    if not isinstance(expression, str) or not croniter.is_valid(expression.strip()):
        raise SpecError(
            f"{expression!r} is not a cron expression (e.g. '0 3 * * *': 03:00 every day)", field="cron"
        )
    return expression.strip()


def next_after(expression: str, after: datetime) -> datetime:
    try:
        return croniter(check_cron(expression), _utc(after)).get_next(datetime)
    except CroniterBadCronError as exc:
        raise SpecError(f"{expression!r}: {exc}", field="cron") from None


def due(expression: str, last: datetime, now: datetime) -> Firing:
    """Whether a schedule that last fired (or was created) at ``last`` fires at ``now``:
    at most once, for the latest firing time not after ``now``, however many were missed."""
    last, now = _utc(last), _utc(now)
    expression = check_cron(expression)
    # the firing time is the whole minute: a later look within that minute is not a new one
    minute = now.replace(second=0, microsecond=0)
    latest = minute if croniter.match(expression, minute) else croniter(expression, now).get_prev(datetime)
    return Firing(latest if latest > last else None, next_after(expression, now))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
