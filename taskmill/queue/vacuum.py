"""Whether and how a worker vacuums the task table: on PostgreSQL only, where claimed tasks
leave dead claim-index entries behind (queue/postgres_vacuum.py); other databases have none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connections

if TYPE_CHECKING:
    from .postgres_vacuum import TableVacuum


def open_table_vacuum(database_alias: str) -> TableVacuum | None:
    """Return a TableVacuum for the database, or None where there is nothing to vacuum."""
    if connections[database_alias].vendor != "postgresql":
        return None
    # Here, not at the top: psycopg is installed only where PostgreSQL is used.
    from .postgres_vacuum import TableVacuum

    return TableVacuum(database_alias)
