"""`taskmill schedule` (list schedules with their last and next runs) and `taskmill purge`
(delete finished tasks)."""

import argparse
import json
import re
from datetime import datetime, timedelta
from typing import Any, Final

from django.core.management.base import BaseCommand, CommandError, CommandParser

from .base import Subcommand

UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(value: str) -> timedelta:
    """Parse '90', '90s', '15m', '12h', '7d' or '2w' into a timedelta."""
    match = DURATION.match(value)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a duration; use a number with an optional unit s, m, h, d or w "
            "(e.g. 7d, 12h, 90)"
        )
    number, unit = match.groups()
    return timedelta(seconds=float(number) * UNITS[unit or "s"])


def _table(command: BaseCommand, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        command.stdout.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _add_schedule_arguments(parser: CommandParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON, one object per schedule")


def _schedule(command: BaseCommand, options: dict[str, Any]) -> None:
    from taskmill.models import Schedule
    from taskmill.routers import queue_databases

    rows = [
        schedule
        for database in queue_databases()
        for schedule in Schedule.objects.using(database).order_by("name")
    ]
    described: list[dict[str, Any]] = [
        {
            "name": s.name,
            "task": s.task_path,
            "when": s.cron or f"every {s.interval_seconds:g}s",
            "timezone": s.timezone,
            "enabled": s.enabled,
            "in_code": s.in_code,
            "last_run": _when(s.last_due_at),
            "next_run": _when(s.next_due_at) if s.enabled else "-",
        }
        for s in rows
    ]
    if options["json"]:
        command.stdout.write(json.dumps(described, indent=2))
        return
    if not described:
        command.stdout.write("No schedules.")
        return
    header = ["NAME", "TASK", "WHEN", "TIMEZONE", "ENABLED", "LAST RUN", "NEXT RUN"]
    _table(
        command,
        header,
        [
            [
                str(d["name"]),
                str(d["task"]),
                str(d["when"]),
                str(d["timezone"]),
                "yes" if d["enabled"] else ("no (removed)" if not d["in_code"] else "no"),
                str(d["last_run"]),
                str(d["next_run"]),
            ]
            for d in described
        ],
    )


def _states(value: str) -> list[str]:
    return [state.strip() for state in value.split(",") if state.strip()]


def _add_purge_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--older-than",
        type=parse_duration,
        default=None,
        help="delete tasks finished longer ago than this (7d, 12h, 90m, seconds); "
        "default: those past their result_ttl",
    )
    parser.add_argument(
        "--status",
        type=_states,
        default=None,
        help="comma-separated states to delete: succeeded, failed, cancelled (default: all three)",
    )
    parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")


def _purge(command: BaseCommand, options: dict[str, Any]) -> None:
    from taskmill.operations import purge

    try:
        counts = purge(
            older_than=options["older_than"], states=options["status"], dry_run=options["dry_run"]
        )
    except ValueError as error:
        raise CommandError(str(error)) from error
    if options["json"]:
        command.stdout.write(json.dumps({"dry_run": options["dry_run"], "deleted": counts}))
        return
    verb = "would delete" if options["dry_run"] else "deleted"
    total = sum(counts.values())
    command.stdout.write(f"{verb} {total} finished task(s)")
    if counts:
        _table(command, ["STATE", "COUNT"], [[s, str(n)] for s, n in sorted(counts.items())])


SUBCOMMANDS = {
    "schedule": Subcommand(
        "list schedules with their last and next runs", _add_schedule_arguments, _schedule
    ),
    "purge": Subcommand("delete finished tasks", _add_purge_arguments, _purge),
}
