"""The database's clock as an ORM expression: leases and due times are compared in SQL against
it, so a worker host with a wrong clock can't rescue a live task or run one early."""

from datetime import datetime
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import DateTimeField, Func
from django.db.models.sql import Query
from django.db.models.sql.compiler import SQLCompiler


class DatabaseNow(Func):
    """The current UTC time on the database server (statement time on PostgreSQL)."""

    template = "CURRENT_TIMESTAMP"
    output_field = DateTimeField()

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> Any:
        # CLOCK_TIMESTAMP, not NOW(): a long transaction must not see time standing still.
        return self.as_sql(compiler, connection, template="CLOCK_TIMESTAMP()", **extra)

    def as_mysql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> Any:
        # Django stores UTC in MySQL DATETIME columns; CURRENT_TIMESTAMP would be in the
        # session's time zone, which is the server's local time unless configured.
        return self.as_sql(compiler, connection, template="UTC_TIMESTAMP(6)", **extra)

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> Any:
        # Same text format Django stores, so comparisons with stored values are exact.
        return self.as_sql(
            compiler,
            connection,
            template="STRFTIME('%%%%Y-%%%%m-%%%%d %%%%H:%%%%M:%%%%f', 'now')",
            **extra,
        )


def read_database_now(database_alias: str) -> datetime:
    """Return the database server's current time (aware, UTC)."""
    query = Query(None)
    query.add_annotation(DatabaseNow(), "now")
    row = next(iter(query.get_compiler(using=database_alias).results_iter()))
    now: datetime = row[0]
    return now
