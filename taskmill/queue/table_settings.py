"""Per-table storage settings for the task table, where a database has them (PostgreSQL);
the migration 0002 applies them. Other databases have no per-table equivalent and need none:
SQLite reuses freed pages at once, and InnoDB purges old row versions in the background.

Why (docs/explanation/scale.md has the measurements): every task leaves two dead row versions
behind on PostgreSQL (ready -> running -> finished), plus dead entries in the claim index.
At the default autovacuum_vacuum_scale_factor of 0.2, a table holding a million finished tasks
is vacuumed only after 200,000 dead versions have piled up; claims walk past the dead index
entries meanwhile. At 0.01 (plus a threshold of 1,000), vacuum follows the churn closely and
stays cheap: the finished rows are all-visible, so it reads only the pages that changed.

No fillfactor: an update can be HOT (in-page, no index writes) only when it changes no indexed
column, and each of a task's updates changes `state`, which the claim index's condition and
the monitoring index read. Free space left in each page would be wasted.
"""

from typing import Final

from django.apps.registry import Apps
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

AUTOVACUUM: Final = {
    "autovacuum_vacuum_scale_factor": "0.01",
    "autovacuum_vacuum_threshold": "1000",
    "autovacuum_vacuum_insert_scale_factor": "0.01",
    "autovacuum_analyze_scale_factor": "0.02",
}


def _applies(schema_editor: BaseDatabaseSchemaEditor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def _table(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> str:
    # The migration state's model, not taskmill.models: a migration must not import the app.
    return schema_editor.quote_name(apps.get_model("taskmill", "TaskRecord")._meta.db_table)


def apply_table_settings(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Set the task table's autovacuum settings (PostgreSQL; elsewhere nothing)."""
    if not _applies(schema_editor):
        return
    table = _table(apps, schema_editor)
    # Names and values are the constants above, not input; ALTER TABLE can't bind them.
    pairs = ", ".join(f"{name} = {value}" for name, value in AUTOVACUUM.items())
    schema_editor.execute(f"ALTER TABLE {table} SET ({pairs})")


def reset_table_settings(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Undo apply_table_settings: back to the server's defaults."""
    if not _applies(schema_editor):
        return
    table = _table(apps, schema_editor)
    schema_editor.execute(f"ALTER TABLE {table} RESET ({', '.join(AUTOVACUUM)})")
