"""Subcommands acting on task results by id: cancel, logs, progress."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Final

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from taskmill.presentation import progress_bar

from .base import Subcommand
from .terminal import printable

if TYPE_CHECKING:
    from taskmill.output import LogLine, LogReader, Progress

# While following, a changed progress is printed at most this often, so a task reporting
# every row doesn't flood the terminal.
PROGRESS_EVERY_SECONDS: Final = 2.0


def _add_cancel_arguments(parser: CommandParser) -> None:
    parser.add_argument("ids", nargs="+", help="result ids")


def _cancel(command: BaseCommand, options: dict[str, Any]) -> None:
    from django.tasks.exceptions import TaskResultDoesNotExist

    from taskmill.operations import cancel

    for result_id in options["ids"]:
        try:
            done = cancel(result_id)
        except TaskResultDoesNotExist as error:
            raise CommandError(f"No task result with id {result_id}.") from error
        command.stdout.write(f"{result_id}: {'cancel requested' if done else 'already finished'}")


def _add_logs_arguments(parser: CommandParser) -> None:
    parser.add_argument("id", help="result id")
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new lines (and progress) until the task finishes",
    )
    parser.add_argument(
        "--json", action="store_true", help="print each line as a JSON object, and nothing else"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="seconds between reads while following (default: 0.5)",
    )


def _logs(command: BaseCommand, options: dict[str, Any]) -> None:
    reader = _open_log(options["id"])
    printer = _LinePrinter(command, as_json=options["json"])
    shown: Progress | None = None
    if not options["follow"]:
        printer.write(reader.read_all())
    else:
        try:
            shown = _follow(reader, printer, options["poll_interval"])
        except KeyboardInterrupt:
            return
    if not options["json"]:
        _write_state(command, reader, already_shown=shown)


def _follow(reader: LogReader, printer: _LinePrinter, poll_interval: float) -> Progress | None:
    """Print lines (and changed progress) until the task ends; return the progress shown last."""
    shown: Progress | None = None
    shown_at = float("-inf")
    while True:
        printer.write(reader.poll())
        if reader.finished:
            return shown
        progress = reader.progress
        due = time.monotonic() - shown_at >= PROGRESS_EVERY_SECONDS
        if not printer.as_json and progress is not None and progress != shown and due:
            printer.command.stdout.write(printable(progress_bar(progress)))
            shown, shown_at = progress, time.monotonic()
        time.sleep(poll_interval)


class _LinePrinter:
    """Write log lines with their time and stream, marking where a new attempt begins."""

    def __init__(self, command: BaseCommand, *, as_json: bool) -> None:
        self.command = command
        self.as_json = as_json
        self.attempt = 1

    def write(self, lines: list[LogLine]) -> None:
        for line in lines:
            self.command.stdout.write(self._json(line) if self.as_json else self._text(line))

    def _json(self, line: LogLine) -> str:
        return json.dumps(
            {
                "time": line.time.isoformat(),
                "stream": line.stream,
                "attempt": line.attempt,
                "text": line.text,
            }
        )

    def _text(self, line: LogLine) -> str:
        heading = ""
        if line.attempt != self.attempt:
            self.attempt = line.attempt
            heading = f"--- attempt {line.attempt} ---\n"
        stamp = timezone.localtime(line.time).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        tag = "" if line.stream == "stdout" else f"[{line.stream}] "
        return f"{heading}{stamp}  {tag}{printable(line.text)}"


def _write_state(
    command: BaseCommand, reader: LogReader, *, already_shown: Progress | None = None
) -> None:
    """Write the task's state, then its progress unless following just printed that."""
    if reader.state is None:
        command.stdout.write(f"task {reader.task_id} no longer exists")
        return
    command.stdout.write(f"task {reader.task_id} {reader.state} (attempts: {reader.attempts})")
    if reader.progress is not None and reader.progress != already_shown:
        command.stdout.write(printable(progress_bar(reader.progress)))


def _add_progress_arguments(parser: CommandParser) -> None:
    parser.add_argument("ids", nargs="+", help="result ids")


def _progress(command: BaseCommand, options: dict[str, Any]) -> None:
    for result_id in options["ids"]:
        reader = _open_log(result_id)
        reader.poll()
        shown = "no progress reported" if reader.progress is None else progress_bar(reader.progress)
        command.stdout.write(f"{result_id}: {reader.state} {printable(shown)}")


def _open_log(result_id: str) -> LogReader:
    from django.tasks.exceptions import TaskResultDoesNotExist

    from taskmill.output import open_log

    try:
        return open_log(result_id)
    except TaskResultDoesNotExist as error:
        raise CommandError(f"No task result with id {result_id}.") from error


SUBCOMMANDS = {
    "cancel": Subcommand("cancel tasks by result id", _add_cancel_arguments, _cancel),
    "logs": Subcommand("print a task's captured output", _add_logs_arguments, _logs),
    "progress": Subcommand("print tasks' state and progress", _add_progress_arguments, _progress),
}
