"""A database router that keeps Taskmill's tables in the database its backends name."""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model
from django.utils.module_loading import import_string

APP_LABEL = "taskmill"


def queue_databases() -> list[str]:
    """Return the database aliases that hold a Taskmill queue, in TASKS order."""
    from .backend import DatabaseBackend

    aliases: list[str] = []
    for params in getattr(settings, "TASKS", {}).values():
        try:
            backend_class = import_string(params.get("BACKEND", ""))
        except ImportError:
            continue
        if isinstance(backend_class, type) and issubclass(backend_class, DatabaseBackend):
            options = params.get("OPTIONS", {})
            # A malformed entry is the backend's check to report; it must not break routing
            # or the other checks first.
            database = options.get("DATABASE") if isinstance(options, Mapping) else None
            if not isinstance(database, str):
                database = DEFAULT_DB_ALIAS
            if database not in aliases:
                aliases.append(database)
    return aliases or [DEFAULT_DB_ALIAS]


class TaskmillRouter:
    """Route Taskmill's models to the queue database; add it to DATABASE_ROUTERS when a
    backend sets OPTIONS['DATABASE']."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        if model._meta.app_label == APP_LABEL:
            return queue_databases()[0]
        return None

    db_for_write = db_for_read

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        if APP_LABEL in (obj1._meta.app_label, obj2._meta.app_label):
            return True
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if app_label == APP_LABEL:
            return db in queue_databases()
        return None
