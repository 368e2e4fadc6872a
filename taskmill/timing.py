"""When a schedule is due: cron and interval due times, catch-up after missed runs, and the
daylight-saving rules. Pure: no database, "now" is always passed in.

Cron times are computed in the schedule's time zone with croniter, then stored in UTC.
- Spring forward: a time that doesn't exist that day (02:30 when clocks jump from 02:00 to
  03:00) runs once, at the end of the gap (03:00); croniter shifts it there.
- Fall back: a time that happens twice (02:30 when clocks go from 03:00 back to 02:00) runs
  once, the first time, unless the hour field starts with "*" (hourly or finer schedules,
  which run by the elapsed hour, as Vixie cron does).
Intervals (`every`) count elapsed time and ignore time zones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from croniter import croniter

# A schedule far behind (every second, a month offline) must not loop for ever in one tick.
MAX_RUNS_PER_TICK: Final = 1000
CRON_FIELDS: Final = 5
# croniter's aliases, spelled out: the hour field decides the fall-back rule.
ALIASES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CatchUp(StrEnum):
    ONCE = "once"  # one run for the whole missed period
    SKIP = "skip"  # no run for missed due times


def zone(name: str, *, schedule: str) -> ZoneInfo:
    """Return the time zone called name; raise ConfigurationError naming the schedule."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as error:
        raise ConfigurationError(
            f"Schedule {schedule!r}: unknown timezone {name!r}; use an IANA name such as "
            "'Europe/Paris' or 'UTC'."
        ) from error


def _croniter() -> type[croniter]:
    # Imported when a cron expression is first used, not with this module: importing croniter
    # runs `file` in a subprocess (its platform.architecture() check) and loads dateutil, about
    # 10 ms of CPU and a fork in every worker's start-up, and only cron schedules need it.
    from croniter import croniter

    return croniter


def check_cron(expression: object, *, schedule: str) -> str:
    """Return a valid five-field cron expression (or @alias); raise ConfigurationError."""
    if not isinstance(expression, str) or not expression.strip():
        raise ConfigurationError(
            f"Schedule {schedule!r}: the cron expression must be a non-empty string such as "
            f"'30 7 * * 1', not {expression!r}."
        )
    text = " ".join(expression.split())
    fields = text.split(" ")
    is_alias = text.lower() in ALIASES
    if not (is_alias or len(fields) == CRON_FIELDS) or not _croniter().is_valid(text):
        raise ConfigurationError(
            f"Schedule {schedule!r}: invalid cron expression {expression!r}; use five fields "
            "(minute hour day-of-month month day-of-week, e.g. '30 7 * * 1') or an alias "
            "such as '@daily'."
        )
    return text


def check_every(every: object, *, schedule: str) -> timedelta:
    """Return a positive interval from a timedelta or seconds; raise ConfigurationError."""
    if isinstance(every, int | float) and not isinstance(every, bool):
        every = timedelta(seconds=every)
    if not isinstance(every, timedelta) or every <= timedelta(0):
        raise ConfigurationError(
            f"Schedule {schedule!r}: every must be a positive timedelta or number of "
            f"seconds, not {every!r}."
        )
    return every


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """How a schedule's due times are spaced: a cron expression in a time zone, or an
    interval."""

    cron: str = ""
    every: timedelta | None = None
    timezone: str = "UTC"

    @property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches its instances

    @property
    def _hour_is_wildcard(self) -> bool:
        fields = ALIASES.get(self.cron.lower(), self.cron).split(" ")
        return len(fields) > 1 and fields[1].startswith("*")

    def next_after(self, after: datetime) -> datetime:
        """Return the first due time strictly after `after` (aware), in UTC."""
        if self.every is not None:
            return (after + self.every).astimezone(UTC)
        local = after.astimezone(self._zone)
        while True:
            found: datetime = _croniter()(self.cron, local).get_next(datetime)
            if not self._is_second_pass(found):
                return found.astimezone(UTC)
            local = found

    def first_due(self, now: datetime, *, start_now: bool = False) -> datetime:
        """Return the first due time of a schedule first seen at `now`."""
        if self.every is not None and start_now:
            return now.astimezone(UTC)
        return self.next_after(now)

    def latest_at_or_before(self, moment: datetime, *, anchor: datetime) -> datetime:
        """Return the latest due time <= moment, counting from anchor (a due time <= moment)."""
        if self.every is not None:
            steps = (moment - anchor) // self.every
            return (anchor + steps * self.every).astimezone(UTC)
        local = (moment + timedelta(seconds=1)).astimezone(self._zone)
        while True:
            found: datetime = _croniter()(self.cron, local).get_prev(datetime)
            if not self._is_second_pass(found):
                return max(found.astimezone(UTC), anchor)
            local = found

    def _is_second_pass(self, found: datetime) -> bool:
        # The repeated hour of a fall-back day: fold=1 marks the second time a wall time
        # happens. Fixed-hour expressions run only the first time.
        if found.fold == 0 or self._hour_is_wildcard:
            return False
        first = found.replace(fold=0)
        return first.utcoffset() != found.utcoffset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What to do for one schedule at one tick."""

    runs: tuple[datetime, ...]  # due times to enqueue now, oldest first
    missed: bool  # some due times were missed (merged into one run, or skipped)
    next_due: datetime  # the first due time after now


def plan_due(
    timing: Timing,
    *,
    next_due: datetime,
    now: datetime,
    catch_up: CatchUp,
    missed_after: timedelta,
) -> Plan:
    """Return the runs due at `now` for a schedule whose next due time is `next_due`.

    A due time more than `missed_after` late was missed (no worker was up): with catch-up
    "once" the missed period gets one run, for its latest due time; with "skip", none. Due
    times less late (a leader fail-over) each get their own run.
    """
    runs: list[datetime] = []
    missed = False
    due = next_due
    cutoff = now - missed_after
    if due <= cutoff:
        missed = True
        latest_missed = timing.latest_at_or_before(cutoff, anchor=due)
        if catch_up == CatchUp.ONCE:
            runs.append(latest_missed)
        due = timing.next_after(latest_missed)
    while due <= now and len(runs) < MAX_RUNS_PER_TICK:
        runs.append(due)
        due = timing.next_after(due)
    return Plan(runs=tuple(runs), missed=missed, next_due=due)
