"""Is Taskmill's schema in a database up to date? Asked by every worker start and by the
autostart keeper, so the usual answer ("yes") costs two small queries and imports no migration.
"""

import pkgutil
from importlib import import_module

from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

APP_LABEL = "taskmill"


def missing_migrations(database_alias: str) -> list[str]:
    """Return the names of Taskmill's migrations not yet applied to this database."""
    if _all_recorded(database_alias):
        return []
    # Some name on disk isn't recorded. Only the migration graph can tell what that means (a
    # squashed migration counts as applied once everything it replaces is), so ask it.
    executor = MigrationExecutor(connections[database_alias])
    targets = [node for node in executor.loader.graph.leaf_nodes() if node[0] == APP_LABEL]
    plan = executor.migration_plan(targets)
    return [migration.name for migration, _ in plan if migration.app_label == APP_LABEL]


def _all_recorded(database_alias: str) -> bool:
    """Return True if django_migrations records every migration module of Taskmill's.

    Building the migration graph imports every migration of every installed app (hundreds in
    a large project); this reads only the names of Taskmill's modules and its recorded rows.
    False means "can't tell this way", never "not migrated".
    """
    module_name, _ = MigrationLoader.migrations_module(APP_LABEL)
    if module_name is None:
        return False  # MIGRATION_MODULES turns them off: the graph knows what that means
    try:
        package = import_module(module_name)
    except ImportError:
        return False
    # The names MigrationLoader.load_disk() loads: modules not starting with _ or ~.
    on_disk = {
        name
        for _, name, is_package in pkgutil.iter_modules(getattr(package, "__path__", []))
        if not is_package and name[0] not in "_~"
    }
    if not on_disk:
        return False
    recorder = MigrationRecorder(connections[database_alias])
    if not recorder.has_table():
        return False
    recorded = set(
        recorder.migration_qs.filter(app=APP_LABEL, name__in=on_disk).values_list("name", flat=True)
    )
    return recorded == on_disk
