"""Due-time math: cron in a time zone (with daylight-saving days), intervals, catch-up."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from taskmill.exceptions import ConfigurationError
from taskmill.timing import CatchUp, Timing, check_cron, check_every, plan_due, zone

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
WINDOW = timedelta(seconds=90)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def due_times(timing: Timing, start: datetime, count: int, tz: ZoneInfo) -> list[str]:
    found, moment = [], start
    for _ in range(count):
        moment = timing.next_after(moment)
        found.append(moment.astimezone(tz).strftime("%m-%d %H:%M%z"))
    return found


def test_cron__daily_time_in_the_schedule_time_zone() -> None:
    timing = Timing(cron="30 7 * * 1", timezone="Europe/Paris")

    assert timing.next_after(utc(2026, 1, 1)) == utc(2026, 1, 5, 6, 30)
    assert timing.next_after(utc(2026, 7, 1)) == utc(2026, 7, 6, 5, 30)


def test_cron__next_after_is_strictly_after() -> None:
    timing = Timing(cron="0 * * * *")

    assert timing.next_after(utc(2026, 1, 1, 10)) == utc(2026, 1, 1, 11)


def test_cron__spring_forward_runs_a_missing_time_once_at_the_end_of_the_gap() -> None:
    # 2026-03-29 in Paris: 02:00 jumps to 03:00, so 02:30 doesn't exist that day.
    timing = Timing(cron="30 2 * * *", timezone="Europe/Paris")

    found = due_times(timing, utc(2026, 3, 27, 12), 4, PARIS)

    assert found == ["03-28 02:30+0100", "03-29 03:00+0200", "03-30 02:30+0200", "03-31 02:30+0200"]


def test_cron__spring_forward_hourly_skips_the_missing_hour() -> None:
    timing = Timing(cron="0 * * * *", timezone="America/New_York")

    # 2026-03-08 in New York: 02:00 jumps to 03:00.
    found = due_times(timing, datetime(2026, 3, 8, 0, 30, tzinfo=NEW_YORK), 3, NEW_YORK)

    assert found == ["03-08 01:00-0500", "03-08 03:00-0400", "03-08 04:00-0400"]


def test_cron__fall_back_runs_a_repeated_time_once() -> None:
    # 2026-10-25 in Paris: 03:00 goes back to 02:00, so 02:30 happens twice.
    timing = Timing(cron="30 2 * * *", timezone="Europe/Paris")

    found = due_times(timing, utc(2026, 10, 23, 12), 4, PARIS)

    assert found == ["10-24 02:30+0200", "10-25 02:30+0200", "10-26 02:30+0100", "10-27 02:30+0100"]


def test_cron__fall_back_hourly_runs_every_elapsed_hour() -> None:
    timing = Timing(cron="@hourly", timezone="Europe/Paris")

    found = due_times(timing, utc(2026, 10, 24, 22, 30), 4, PARIS)

    assert found == ["10-25 01:00+0200", "10-25 02:00+0200", "10-25 02:00+0100", "10-25 03:00+0100"]


def test_cron__fall_back_in_new_york() -> None:
    timing = Timing(cron="30 1 * * *", timezone="America/New_York")

    found = due_times(timing, datetime(2026, 10, 31, 12, tzinfo=NEW_YORK), 3, NEW_YORK)

    assert found == ["11-01 01:30-0400", "11-02 01:30-0500", "11-03 01:30-0500"]


def test_interval__counts_elapsed_time_across_daylight_saving() -> None:
    timing = Timing(every=timedelta(hours=1), timezone="Europe/Paris")

    assert timing.next_after(utc(2026, 10, 25, 0)) == utc(2026, 10, 25, 1)


def test_first_due__periodic_waits_one_interval_unless_start_now() -> None:
    timing = Timing(every=timedelta(minutes=10))
    now = utc(2026, 1, 1, 12)

    assert timing.first_due(now) == utc(2026, 1, 1, 12, 10)
    assert timing.first_due(now, start_now=True) == now


def test_plan__nothing_missed_runs_each_due_time() -> None:
    timing = Timing(every=timedelta(seconds=10))

    plan = plan_due(
        timing,
        next_due=utc(2026, 1, 1, 12),
        now=utc(2026, 1, 1, 12, 0, 25),
        catch_up=CatchUp.ONCE,
        missed_after=WINDOW,
    )

    assert plan.runs == (
        utc(2026, 1, 1, 12),
        utc(2026, 1, 1, 12, 0, 10),
        utc(2026, 1, 1, 12, 0, 20),
    )
    assert not plan.missed
    assert plan.next_due == utc(2026, 1, 1, 12, 0, 30)


def test_plan__not_yet_due_runs_nothing() -> None:
    plan = plan_due(
        Timing(cron="0 * * * *"),
        next_due=utc(2026, 1, 1, 13),
        now=utc(2026, 1, 1, 12, 59),
        catch_up=CatchUp.ONCE,
        missed_after=WINDOW,
    )

    assert plan.runs == ()
    assert plan.next_due == utc(2026, 1, 1, 13)


def test_plan__catch_up_once_runs_the_missed_period_once() -> None:
    plan = plan_due(
        Timing(cron="0 * * * *"),
        next_due=utc(2026, 1, 1, 1),
        now=utc(2026, 1, 1, 5, 10),
        catch_up=CatchUp.ONCE,
        missed_after=WINDOW,
    )

    assert plan.runs == (utc(2026, 1, 1, 5),)
    assert plan.missed
    assert plan.next_due == utc(2026, 1, 1, 6)


def test_plan__catch_up_skip_runs_nothing_for_the_missed_period() -> None:
    plan = plan_due(
        Timing(cron="0 * * * *"),
        next_due=utc(2026, 1, 1, 1),
        now=utc(2026, 1, 1, 5, 10),
        catch_up=CatchUp.SKIP,
        missed_after=WINDOW,
    )

    assert plan.runs == ()
    assert plan.missed
    assert plan.next_due == utc(2026, 1, 1, 6)


def test_plan__late_by_less_than_the_window_is_not_missed() -> None:
    # A leader fail-over: the due time is a minute late, still run, even with skip.
    plan = plan_due(
        Timing(cron="0 * * * *"),
        next_due=utc(2026, 1, 1, 5),
        now=utc(2026, 1, 1, 5, 1),
        catch_up=CatchUp.SKIP,
        missed_after=WINDOW,
    )

    assert plan.runs == (utc(2026, 1, 1, 5),)
    assert not plan.missed


def test_plan__missed_period_then_recent_due_times() -> None:
    plan = plan_due(
        Timing(every=timedelta(seconds=60)),
        next_due=utc(2026, 1, 1, 0),
        now=utc(2026, 1, 1, 1, 0, 40),
        catch_up=CatchUp.ONCE,
        missed_after=WINDOW,
    )

    # One run for the missed hour (its latest due time more than 90 s late, 00:59), then the
    # due time inside the window (01:00) on its own.
    assert plan.runs == (utc(2026, 1, 1, 0, 59), utc(2026, 1, 1, 1))
    assert plan.next_due == utc(2026, 1, 1, 1, 1)


@pytest.mark.parametrize("expression", ["@daily", "0 9 * * 1-5", "*/15 8-18 * * *", "0 0 1,15 * *"])
def test_check_cron__accepts_five_fields_ranges_lists_steps_and_aliases(expression: str) -> None:
    assert check_cron(expression, schedule="s") == expression


@pytest.mark.parametrize(
    "expression", ["61 * * * *", "* * * *", "0 0 * * * *", "", "@sometimes", 5]
)
def test_check_cron__refuses_bad_expressions_naming_the_schedule(expression: object) -> None:
    with pytest.raises(ConfigurationError, match=r"Schedule 'nightly'"):
        check_cron(expression, schedule="nightly")


@pytest.mark.parametrize("every", [0, -1, timedelta(0), "10", True, None])
def test_check_every__refuses_non_positive_or_non_numbers(every: object) -> None:
    with pytest.raises(ConfigurationError, match=r"Schedule 'x': every must be a positive"):
        check_every(every, schedule="x")


def test_check_every__takes_seconds_or_timedelta() -> None:
    assert check_every(90, schedule="x") == timedelta(seconds=90)
    assert check_every(timedelta(minutes=2), schedule="x") == timedelta(minutes=2)


def test_zone__unknown_name_is_an_error_naming_the_schedule() -> None:
    with pytest.raises(ConfigurationError, match=r"Schedule 'x': unknown timezone 'Europe/Pariss'"):
        zone("Europe/Pariss", schedule="x")
