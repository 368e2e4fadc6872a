"""The schema check a worker starts with: two small queries when every migration is recorded,
the migration graph's answer otherwise."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from taskmill.worker import schema

pytestmark = pytest.mark.django_db


def test_missing_migrations__migrated_database_is_answered_without_the_graph(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_graph(*args: object) -> None:
        raise AssertionError("the migration graph was built")

    monkeypatch.setattr(schema, "MigrationExecutor", no_graph)
    with CaptureQueriesContext(connection) as queries:
        assert schema.missing_migrations("default") == []
    # The table's existence, then Taskmill's rows.
    assert len(queries) <= 2


def test_missing_migrations__an_unrecorded_migration_is_named_by_the_graph(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    graph_built = []

    def spying_executor(database: BaseDatabaseWrapper) -> MigrationExecutor:
        graph_built.append(True)
        return MigrationExecutor(database)

    monkeypatch.setattr(schema, "MigrationExecutor", spying_executor)
    # The latest one: the graph plans forwards, so a gap below an applied migration is
    # Django's inconsistent history, not a missing migration.
    recorded = MigrationRecorder(connection).migration_qs.filter(app="taskmill")
    latest = recorded.order_by("-name").values_list("name", flat=True)[0]
    recorded.filter(name=latest).delete()
    assert schema.missing_migrations("default") == [latest]
    assert graph_built == [True]


def test_missing_migrations__migrations_turned_off_defers_to_the_graph() -> None:
    # MIGRATION_MODULES = None makes the app unmigrated to Django: nothing is missing.
    with override_settings(MIGRATION_MODULES={"taskmill": None}):
        assert schema.missing_migrations("default") == []


def test_all_recorded__false_when_a_module_on_disk_has_no_row() -> None:
    assert schema._all_recorded("default")
    MigrationRecorder(connection).migration_qs.filter(app="taskmill", name="0001_initial").delete()
    assert not schema._all_recorded("default")
