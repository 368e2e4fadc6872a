"""Subcommands for looking at the queue and acting on finished tasks: status, list, show, retry.

Each takes --json for scripts; human output is aligned, with times relative and absolute.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .base import Subcommand
from .table import format_table

if TYPE_CHECKING:
    from taskmill.models import TaskRecord
    from taskmill.stats import Overview

_SINCE: Final = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>[smhd])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def write_json(command: BaseCommand, data: object) -> None:
    command.stdout.write(json.dumps(data, default=_json_default, indent=2))


def stamp(moment: datetime | None, now: datetime) -> str:
    """A time as "2026-11-23 19:25:44 (5m 3s ago)", in the current time zone."""
    from taskmill.presentation import ago_text

    if moment is None:
        return "-"
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S} ({ago_text(moment, now)})"


# --- status ---------------------------------------------------------------------------------


def _add_json(parser: CommandParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON, for scripts")


def _status(command: BaseCommand, options: dict[str, Any]) -> None:
    from taskmill import stats
    from taskmill.presentation import ago_text, duration_text

    overview = stats.overview()
    now = overview.now
    finished = {
        state: sum(overview.counts.get(state, {}).values())
        for state in ("succeeded", "failed", "cancelled")
    }
    if options["json"]:
        write_json(command, _status_data(overview, finished))
        return
    queue_rows = [
        (q.name, q.due, q.waiting, q.blocked, q.running, duration_text(q.oldest_wait(now)))
        for q in overview.queues
    ]
    lines = format_table(
        ["queue", "due", "waiting", "blocked", "running", "oldest due"],
        queue_rows,
        right=(1, 2, 3, 4, 5),
    )
    command.stdout.write("\n".join(lines) if queue_rows else "No queued or running tasks.")
    window = int(stats.WINDOW.total_seconds() // 60)
    done = ", ".join(f"{state} {n}" for state, n in finished.items())
    command.stdout.write(f"\nFinished in the last {window} min: {done}")
    command.stdout.write(f"\nWorkers alive: {len(overview.workers)}")
    if overview.workers:
        worker_rows = [
            (
                w.id,
                f"{w.host}:{w.pid}",
                ",".join(w.queues) or "all",
                w.concurrency,
                ago_text(w.last_heartbeat_at, now),
            )
            for w in overview.workers
        ]
        lines = format_table(
            ["worker", "host", "queues", "concurrency", "heartbeat"], worker_rows, right=(3,)
        )
        command.stdout.write("\n".join(lines))


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _status_data(overview: Overview, finished: dict[str, int]) -> dict[str, Any]:
    now = overview.now
    return {
        "now": now,
        "queues": [
            {
                "queue": q.name,
                "due": q.due,
                "waiting": q.waiting,
                "blocked": q.blocked,
                "running": q.running,
                "oldest_due_at": q.oldest_due_at,
                "oldest_wait_seconds": _seconds(q.oldest_wait(now)),
            }
            for q in overview.queues
        ],
        "finished_last_hour": finished,
        "workers": [
            {
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "queues": w.queues,
                "concurrency": w.concurrency,
                "last_heartbeat_at": w.last_heartbeat_at,
            }
            for w in overview.workers
        ],
    }


# --- list -----------------------------------------------------------------------------------


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """Parse --since: an age such as 30s, 10m, 2h, 7d, or an ISO date and time."""
    found = _SINCE.match(value.strip())
    if found:
        seconds = float(found["amount"]) * _UNIT_SECONDS[found["unit"]]
        return (now or timezone.now()) - timedelta(seconds=seconds)
    moment = parse_datetime(value.strip())
    if moment is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither an age (30s, 10m, 2h, 7d) nor a date and time "
            "(2026-11-23T19:00)."
        )
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def _states(value: str) -> list[str]:
    from taskmill.states import State

    names = [name.strip() for name in value.split(",") if name.strip()]
    wrong = [name for name in names if name not in State.values]
    if wrong or not names:
        raise argparse.ArgumentTypeError(
            f"unknown state {', '.join(wrong) or '(none)'}; use {', '.join(State.values)}"
        )
    return names


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _add_list_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--state",
        type=_states,
        action="extend",
        default=[],
        help="only these states (comma-separated, or repeat the option)",
    )
    parser.add_argument("--queue", help="only this queue")
    parser.add_argument("--task", help="only this task path, e.g. myapp.tasks.send_mail")
    parser.add_argument(
        "--since",
        type=parse_since,
        help="enqueued since: an age (30s, 10m, 2h, 7d) or a date and time",
    )
    parser.add_argument("--limit", type=_positive, default=50, help="at most N (default 50)")
    _add_json(parser)


def _list(command: BaseCommand, options: dict[str, Any]) -> None:
    from taskmill import stats
    from taskmill.presentation import ago_text, progress_bar

    wanted = stats.TaskFilter(
        states=tuple(options["state"]),
        queue_name=options["queue"],
        task_path=options["task"],
        since=options["since"],
        limit=options["limit"],
    )
    records = stats.find_tasks(wanted)
    if options["json"]:
        write_json(command, [_row_data(record) for record in records])
        return
    if not records:
        command.stdout.write("No tasks match.")
        return
    now = timezone.now()
    rows = []
    for record in records:
        detail = progress_bar(record.progress, width=10) if record.progress else ""
        rows.append(
            (
                record.id,
                record.task_path,
                record.queue_name,
                record.state,
                ago_text(record.enqueued_at, now),
                ago_text(record.finished_at, now),
                detail,
            )
        )
    headers = ["id", "task", "queue", "state", "enqueued", "finished", "progress"]
    command.stdout.write("\n".join(format_table(headers, rows)))


def _row_data(record: TaskRecord) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "task_path": record.task_path,
        "queue_name": record.queue_name,
        "priority": record.priority,
        "state": record.state,
        "attempts": record.attempts,
        "enqueued_at": record.enqueued_at,
        "run_after": record.run_after,
        "started_at": record.started_at,
        "last_attempted_at": record.last_attempted_at,
        "finished_at": record.finished_at,
        "progress": record.progress,
    }


# --- show -----------------------------------------------------------------------------------


def _add_show_arguments(parser: CommandParser) -> None:
    parser.add_argument("id", help="result id")
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="redraw the progress bar until the task finishes",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="seconds between reads while following (default: 0.5)",
    )
    _add_json(parser)


def _show(command: BaseCommand, options: dict[str, Any]) -> None:
    from django.tasks.exceptions import TaskResultDoesNotExist

    from taskmill.lookup import find_record

    from .show import describe, follow_progress

    try:
        record = find_record(options["id"])
    except TaskResultDoesNotExist as error:
        raise CommandError(f"No task result with id {options['id']}.") from error
    if options["follow"] and not options["json"]:
        try:
            record = follow_progress(
                record, _progress_writer(command), poll_interval=options["poll_interval"]
            )
        except KeyboardInterrupt:
            return
    if options["json"]:
        write_json(command, describe(record, as_data=True))
        return
    command.stdout.write(str(describe(record, as_data=False)))


def _progress_writer(command: BaseCommand) -> Callable[[str], None]:
    """Redraw one line on a terminal; elsewhere (a pipe, a test) print each change."""
    redraw = command.stdout.isatty()

    def write(line: str) -> None:
        if redraw:
            command.stdout.write(f"\r\033[K{line}", ending="")
            command.stdout.flush()
        else:
            command.stdout.write(line)

    return write


# --- retry ----------------------------------------------------------------------------------


def _add_retry_arguments(parser: CommandParser) -> None:
    parser.add_argument("ids", nargs="+", help="result ids of failed or cancelled tasks")
    _add_json(parser)


def _retry(command: BaseCommand, options: dict[str, Any]) -> None:
    from django.tasks.exceptions import TaskResultDoesNotExist

    from taskmill.exceptions import NotRetryable, TaskNotRegistered
    from taskmill.operations import retry_task

    done: list[dict[str, str]] = []
    problems: list[str] = []
    for result_id in options["ids"]:
        try:
            new = retry_task(result_id)
        except TaskResultDoesNotExist:
            problems.append(f"{result_id}: no task result with this id")
        except (NotRetryable, TaskNotRegistered) as error:
            problems.append(f"{result_id}: {error}")
        else:
            done.append({"id": result_id, "new_id": new.id})
            if not options["json"]:
                command.stdout.write(f"{result_id}: retried as {new.id}")
    if options["json"]:
        write_json(command, {"retried": done, "errors": problems})
    if problems:
        raise CommandError("\n".join(problems))


SUBCOMMANDS = {
    "status": Subcommand("show queues, counts and workers", _add_json, _status),
    "list": Subcommand("list tasks, newest first", _add_list_arguments, _list),
    "show": Subcommand("show one task in full", _add_show_arguments, _show),
    "retry": Subcommand("enqueue failed or cancelled tasks again", _add_retry_arguments, _retry),
}
