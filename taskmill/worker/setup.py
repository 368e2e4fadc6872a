"""Turn what the command line asked for into WorkerOptions, checked against the backend."""

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.core.management.base import CommandError
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTaskBackend

from ..backend import DatabaseBackend
from .containment import parse_memory_size
from .options import WorkerOptions
from .schema import missing_migrations
from .startup import retry_at_start
from .supervisor import Supervisor

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s %(message)s"
VERBOSITY_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


def serving_backend(alias: str, backend_option: str) -> DatabaseBackend:
    """Return the Taskmill backend a worker would serve; raise ValueError saying what is wrong,
    naming the setting or flag (backend_option) that chose it."""
    try:
        backend = task_backends[alias]
    except InvalidTaskBackend as error:
        raise ValueError(f"{backend_option} {alias!r}: {error}") from error
    if not isinstance(backend, DatabaseBackend):
        raise ValueError(
            f"{backend_option} {alias!r} uses {type(backend).__name__}, not Taskmill's "
            "DatabaseBackend; use an alias of TASKS whose BACKEND is "
            "taskmill.backend.DatabaseBackend."
        )
    return backend


def queues_to_serve(
    backend: DatabaseBackend, queues: Sequence[str] | None, queues_option: str
) -> list[str]:
    """Return the queues a worker serves: the ones asked for, or all of the backend's.

    Raise ValueError naming queues_option (the setting or flag that asked) for a queue the
    backend doesn't allow, or when the backend allows any name and none was asked for.
    """
    where = f"TASKS[{backend.alias!r}]['QUEUES']"
    known = sorted(backend.queues)
    if not known and not queues:
        raise ValueError(
            f"{where} is empty (any queue name is allowed), so the worker can't tell which "
            f"queues to serve: set {queues_option}."
        )
    chosen = list(queues) if queues else known
    unknown = [name for name in chosen if known and name not in known]
    if unknown:
        raise ValueError(
            f"{queues_option} names unknown queue(s) {', '.join(unknown)}; "
            f"{where} allows: {', '.join(known)}."
        )
    return chosen


def build_options(
    *,
    backend_alias: str,
    queues: Sequence[str] | None,
    concurrency: int | None,
    max_tasks_per_child: int | None,
    burst: bool,
    grace: float,
    pool: str,
    prefetch: int | None = None,
    max_memory_per_child: str | None = None,
    pipeline_depth: int | None = None,
) -> WorkerOptions:
    """Return checked worker options; raise CommandError naming a bad value and the fix."""
    try:
        backend = serving_backend(backend_alias, "--backend")
        chosen = queues_to_serve(backend, queues, "--queues")
    except ValueError as error:
        raise CommandError(str(error)) from error
    if concurrency is not None and concurrency < 1:
        raise CommandError(f"--concurrency must be at least 1, not {concurrency}.")
    if max_tasks_per_child is not None and max_tasks_per_child < 1:
        raise CommandError(f"--max-tasks-per-child must be at least 1, not {max_tasks_per_child}.")
    try:
        memory_limit = (
            None
            if max_memory_per_child is None
            else parse_memory_size(max_memory_per_child, "--max-memory-per-child")
        )
    except ValueError as error:
        raise CommandError(str(error)) from error
    if grace < 0:
        raise CommandError(f"--grace must be 0 or more seconds, not {grace}.")
    if prefetch is not None and prefetch < 0:
        raise CommandError(f"--prefetch must be 0 or more, not {prefetch}.")
    if pipeline_depth is not None and pipeline_depth < 1:
        raise CommandError(
            f"--pipeline-depth must be at least 1 (one task at a time), not {pipeline_depth}."
        )
    solo = pool == "solo"
    slots = 1 if solo else (concurrency or os.cpu_count() or 1)
    return WorkerOptions(
        backend_alias=backend_alias,
        database_alias=backend.database_alias,
        queue_names=tuple(chosen),
        concurrency=slots,
        # The solo pool runs a task at the moment it is claimed: nothing to keep in hand.
        # Unset, it adapts to how long tasks take (worker/claim_ahead.py).
        prefetch=0 if solo else prefetch,
        pipeline_depth=pipeline_depth,
        max_tasks_per_child=max_tasks_per_child,
        max_memory_per_child=memory_limit,
        burst=burst,
        grace=grace,
        solo=solo,
    )


@contextmanager
def logging_for(verbosity: int) -> Iterator[None]:
    """Set the taskmill loggers' level from -v while the worker runs, with a readable console
    format unless the project configured logging; restore both afterwards."""
    logger = logging.getLogger("taskmill")
    level = logger.level
    logger.setLevel(VERBOSITY_LEVELS.get(verbosity, logging.DEBUG))
    handler: logging.Handler | None = None
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
    try:
        yield
    finally:
        logger.setLevel(level)
        if handler is not None:
            logger.removeHandler(handler)


def require_migrated(database_alias: str) -> None:
    """Raise CommandError if Taskmill's tables in this database lack a migration.

    A worker on an unmigrated database would otherwise fail on every query, for ever.
    """
    missing = retry_at_start(lambda: missing_migrations(database_alias), database_alias)
    if missing:
        raise CommandError(
            f"Taskmill's tables in database {database_alias!r} are not up to date (missing "
            f"migrations: {', '.join(missing)}); run `manage.py migrate --database "
            f"{database_alias}` first."
        )


def run_worker(options: WorkerOptions) -> int:
    """Run a worker in this process until it stops; return its exit code."""
    supervisor = Supervisor(options)
    in_main_thread = threading.current_thread() is threading.main_thread()
    restore = supervisor.install_signal_handlers() if in_main_thread else None
    try:
        return supervisor.run()
    finally:
        if restore is not None:
            restore()
