"""`taskmill worker`: run tasks."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS

from .base import Subcommand
from .checks import run_checks


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
        "--max-memory-per-child",
        default=None,
        metavar="SIZE",
        help="replace a child whose resident memory is above SIZE after a task, e.g. 512MiB "
        "or 200MB (a plain number counts KiB)",
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        default=None,
        help="tasks claimed ahead while the queue is busy, so a free child never waits for "
        "the database; 0 turns it off (default: adapted to how long tasks take)",
    )
    parser.add_argument(
        "--pipeline-depth",
        type=int,
        default=None,
        help="tasks a child may hold, the one it runs included, so it never waits for the "
        "supervisor between them; 1 turns it off (default: adapted to how long tasks take)",
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
    # Set by autostart for the worker it starts: stop when that process (the server) dies.
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)


def _worker(command: BaseCommand, options: dict[str, Any]) -> None:
    from taskmill.worker.parent import stop_with_parent
    from taskmill.worker.setup import build_options, logging_for, require_migrated, run_worker
    from taskmill.worker.startup import retry_at_start

    if options["parent_pid"] is not None:
        stop_with_parent(options["parent_pid"])
    worker_options = build_options(
        backend_alias=options["backend"],
        queues=options["queues"],
        concurrency=options["concurrency"],
        max_tasks_per_child=options["max_tasks_per_child"],
        max_memory_per_child=options["max_memory_per_child"],
        burst=options["burst"],
        grace=options["grace"],
        pool=options["pool"],
        prefetch=options["prefetch"],
        pipeline_depth=options["pipeline_depth"],
    )
    with logging_for(options["verbosity"]):
        if not options["skip_checks"]:
            retry_at_start(lambda: run_checks(command), worker_options.database_alias)
        require_migrated(worker_options.database_alias)
        run_worker(worker_options)


SUBCOMMANDS = {
    "worker": Subcommand("run tasks", _add_worker_arguments, _worker, runs_own_checks=True)
}
