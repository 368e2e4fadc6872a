"""Per-table storage settings for the task table, where a database has them (PostgreSQL);
the migrations 0002 and 0003 apply them. Other databases have no per-table equivalent and need
none: SQLite reuses freed pages at once, and InnoDB purges old row versions in the background.

Why (docs/explanation/scale.md has the measurements): every task leaves two dead row versions
behind on PostgreSQL (ready -> running -> finished), plus dead entries in the claim index.
At the default autovacuum_vacuum_scale_factor of 0.2, a table holding a million finished tasks
is vacuumed only after 200,000 dead versions have piled up; claims walk past the dead index
entries meanwhile. At 0.01 (plus a threshold of 1,000), vacuum follows the churn closely and
stays cheap: the finished rows are all-visible, so it reads only the pages that changed.

Index cleanup always on (0003): by default (auto) a vacuum skips the indexes when fewer than
2% of the table's pages hold dead row versions. In a big table that is most vacuums the
settings above start (measured, 500,000 finished rows then 2,000 tasks: "index scan
bypassed: 205 pages from table (1.72% of total)"). The claim index then keeps the dead
entries of every claimed task, and each claim walks them: after 100,000 tasks, ~600 index
pages, ~1 ms per claim. With it on, each vacuum also removes dead index entries and deletes
the emptied claim-index pages.

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
INDEX_CLEANUP: Final = {"vacuum_index_cleanup": "on"}


def _applies(schema_editor: BaseDatabaseSchemaEditor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def _table(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> str:
    # The migration state's model, not taskmill.models: a migration must not import the app.
    return schema_editor.quote_name(apps.get_model("taskmill", "TaskRecord")._meta.db_table)


def _set(apps: Apps, schema_editor: BaseDatabaseSchemaEditor, options: dict[str, str]) -> None:
    if not _applies(schema_editor):
        return
    table = _table(apps, schema_editor)
    # Names and values are the constants above, not input; ALTER TABLE can't bind them.
    pairs = ", ".join(f"{name} = {value}" for name, value in options.items())
    schema_editor.execute(f"ALTER TABLE {table} SET ({pairs})")


def _reset(apps: Apps, schema_editor: BaseDatabaseSchemaEditor, options: dict[str, str]) -> None:
    if not _applies(schema_editor):
        return
    table = _table(apps, schema_editor)
    schema_editor.execute(f"ALTER TABLE {table} RESET ({', '.join(options)})")


def apply_table_settings(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Set the task table's autovacuum settings (PostgreSQL; elsewhere nothing)."""
    _set(apps, schema_editor, AUTOVACUUM)


def reset_table_settings(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Undo apply_table_settings: back to the server's defaults."""
    _reset(apps, schema_editor, AUTOVACUUM)


def apply_index_cleanup(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Make every vacuum of the task table clean its indexes (PostgreSQL; elsewhere nothing)."""
    _set(apps, schema_editor, INDEX_CLEANUP)


def reset_index_cleanup(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Undo apply_index_cleanup: back to the server's default (auto)."""
    _reset(apps, schema_editor, INDEX_CLEANUP)
