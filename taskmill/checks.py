"""System checks: TASKMILL settings and the databases Taskmill's queues live in."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db import connections

from .conf import get_settings
from .exceptions import ConfigurationError
from .routers import queue_databases

SUPPORTED_VENDORS = ("postgresql", "mysql", "sqlite")


@checks.register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Report a wrong TASKMILL setting."""
    get_settings.cache_clear()
    try:
        get_settings()
    except ConfigurationError as error:
        return [checks.Error(str(error), id="taskmill.E010")]
    return []


@checks.register()
def check_schedules(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Report a schedule (decorated or in TASKMILL['SCHEDULE']) that a worker couldn't run."""
    from .schedules import registry, specs_problems

    try:
        schedule_setting = get_settings().SCHEDULE
    except ConfigurationError:
        return []  # check_settings reports it
    return [
        checks.Error(problem, id="taskmill.E030")
        for problem in specs_problems(registry, schedule_setting)
    ]


@checks.register()
def check_databases(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Report a queue database whose vendor Taskmill can't drive."""
    errors: list[checks.CheckMessage] = []
    for alias in queue_databases():
        if alias not in connections:
            continue  # the backend's own check reports an unknown alias
        vendor = connections[alias].vendor
        if vendor not in SUPPORTED_VENDORS:
            errors.append(
                checks.Error(
                    f"Database {alias!r} is {vendor!r}, which Taskmill can't use for its queue.",
                    hint="Use PostgreSQL, MariaDB/MySQL or SQLite for the queue database.",
                    id="taskmill.E020",
                )
            )
    return errors
