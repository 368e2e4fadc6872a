"""Subcommands acting on task results by id: cancel."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from .base import Subcommand


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


SUBCOMMANDS = {
    "cancel": Subcommand("cancel tasks by result id", _add_cancel_arguments, _cancel),
}
