"""The queue: the only package that knows SQL dialects. get_queue(alias) picks one, once."""

from functools import cache
from typing import TYPE_CHECKING

from django.db import connections

if TYPE_CHECKING:
    from .base import Queue


@cache
def get_queue(database_alias: str) -> "Queue":
    """Return the Queue for a database alias, chosen from its connection's vendor."""
    vendor = connections[database_alias].vendor
    if vendor == "postgresql":
        from .postgres import PostgresQueue

        return PostgresQueue(database_alias)
    if vendor == "mysql":
        from .mysql import MySQLQueue

        return MySQLQueue(database_alias)
    if vendor == "sqlite":
        from .sqlite import SQLiteQueue

        return SQLiteQueue(database_alias)
    from ..exceptions import ConfigurationError

    raise ConfigurationError(
        f"Database {database_alias!r} uses {vendor!r}; Taskmill supports PostgreSQL, "
        "MariaDB/MySQL and SQLite."
    )
