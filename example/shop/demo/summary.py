"""The summary table: for each stop of the tour and for the periodic schedule, how it had to
end, how it ended, and a ✓ when the two agree."""

from datetime import datetime

from ..tasks import CHECK_PAYMENTS_EVERY
from .narrator import duration, seconds_between
from .schedules import PERIODIC_RUNS_EXPECTED, ScheduleRuns
from .tour import Stop, problems_of
from .watcher import outcome_text

HEADERS = ["", "task", "expected", "status", "attempts", "took", "result / error"]
STATUS_COLUMN = 3


def first_start(stops: list[Stop]) -> datetime | None:
    """Return when the first task of the tour started."""
    return min((stop.result.started_at for stop in stops if stop.result.started_at), default=None)


def summary_rows(stops: list[Stop], periodic: ScheduleRuns) -> list[list[str]]:
    """Return one row per stop, as its result now stands, then one for the periodic runs."""
    first = first_start(stops)
    rows = [
        [
            "✗" if problems_of(stop, first) else "✓",
            stop.label,
            stop.expected.describe(),
            str(stop.result.status),
            str(stop.result.attempts),
            duration(seconds_between(stop.result.started_at, stop.result.finished_at)),
            outcome_text(stop),
        ]
        for stop in stops
    ]
    rows.append(
        [
            "✓" if periodic.ran(PERIODIC_RUNS_EXPECTED) else "✗",
            f"{periodic.short_name}() @periodic",
            f"{PERIODIC_RUNS_EXPECTED}+ runs, every {CHECK_PAYMENTS_EVERY.seconds} s",
            "FAILED" if periodic.failed else "SUCCESSFUL",
            f"{periodic.succeeded + periodic.failed} runs",
            "—",
            f"{periodic.succeeded} succeeded, {periodic.failed} failed",
        ]
    )
    return rows
