"""`manage.py taskmill <subcommand>`: parses arguments and dispatches; no logic of its own."""

import argparse
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS


def _queue_list(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one queue name, e.g. --queues default")
    return names


def _add_worker_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--queues",
        type=_queue_list,
        default=None,
        help="comma-separated queues to serve (default: all of the backend's)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="child processes running tasks (default: number of CPUs)",
    )
    parser.add_argument(
        "--max-tasks-per-child",
        type=int,
        default=None,
        help="replace a child after it ran this many tasks",
    )
    parser.add_argument(
        "--backend",
        default=DEFAULT_TASK_BACKEND_ALIAS,
        help="alias in settings.TASKS (default: %(default)s)",
    )
    parser.add_argument("--burst", action="store_true", help="run what is due, then exit")
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds running tasks get to finish on SIGTERM (default: 30)",
    )
    parser.add_argument(
        "--pool",
        choices=["fork", "solo"],
        default="fork",
        help="solo runs tasks in this process, one at a time (for debugging)",
    )


def _worker(command: BaseCommand, options: dict[str, Any]) -> None:
    from taskmill.worker.setup import build_options, logging_for, require_migrated, run_worker

    worker_options = build_options(
        backend_alias=options["backend"],
        queues=options["queues"],
        concurrency=options["concurrency"],
        max_tasks_per_child=options["max_tasks_per_child"],
        burst=options["burst"],
        grace=options["grace"],
        pool=options["pool"],
    )
    require_migrated(worker_options.database_alias)
    with logging_for(options["verbosity"]):
        run_worker(worker_options)


def _cancel(command: BaseCommand, options: dict[str, Any]) -> None:
    from django.tasks.exceptions import TaskResultDoesNotExist

    from taskmill.operations import cancel

    for result_id in options["ids"]:
        try:
            done = cancel(result_id)
        except TaskResultDoesNotExist as error:
            raise CommandError(f"No task result with id {result_id}.") from error
        command.stdout.write(f"{result_id}: {'cancel requested' if done else 'already finished'}")


SUBCOMMANDS: dict[
    str,
    tuple[str, Callable[[CommandParser], object], Callable[[BaseCommand, dict[str, Any]], None]],
] = {
    "worker": ("run tasks", _add_worker_arguments, _worker),
    "cancel": (
        "cancel tasks by result id",
        lambda p: p.add_argument("ids", nargs="+", help="result ids"),
        _cancel,
    ),
}


class Command(BaseCommand):
    help = "Taskmill: run workers and manage tasks."

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(
            dest="subcommand", required=True, parser_class=CommandParser
        )
        for name, (summary, add_arguments, _) in SUBCOMMANDS.items():
            sub = subparsers.add_parser(name, help=summary, description=summary.capitalize())
            # Accept -v after the subcommand too; SUPPRESS keeps a -v given before it.
            sub.add_argument(
                "-v",
                "--verbosity",
                type=int,
                choices=[0, 1, 2, 3],
                default=argparse.SUPPRESS,
                help="0 quiet, 1 normal, 2-3 debug",
            )
            add_arguments(sub)

    def handle(self, *args: Any, **options: Any) -> None:
        _, _, run = SUBCOMMANDS[options["subcommand"]]
        run(self, options)
