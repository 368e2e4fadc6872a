"""The task table's vacuum settings (migrations 0002 and 0003, taskmill/queue/table_settings.py):
set on PostgreSQL, reset when a migration is unapplied, and nothing on other databases."""

import pytest
from django.core.management import call_command
from django.db import connection

from taskmill.models import TaskRecord
from taskmill.queue.table_settings import AUTOVACUUM, INDEX_CLEANUP

pytestmark = pytest.mark.django_db

TABLE = TaskRecord._meta.db_table


def reloptions() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [TABLE])
        (options,) = cursor.fetchone()
    return dict(option.split("=", 1) for option in options or [])


@pytest.mark.only_on("postgresql")
def test_migrate__sets_the_task_tables_autovacuum_and_index_cleanup_settings() -> None:
    assert reloptions() == AUTOVACUUM | INDEX_CLEANUP


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db(transaction=True)
def test_unapplying_0003__resets_index_cleanup_only() -> None:
    try:
        call_command("migrate", "taskmill", "0002", verbosity=0)
        assert reloptions() == AUTOVACUUM
    finally:
        call_command("migrate", "taskmill", verbosity=0)
    assert reloptions() == AUTOVACUUM | INDEX_CLEANUP


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db(transaction=True)
def test_unapplying_0002__resets_them_and_applying_sets_them_again() -> None:
    try:
        call_command("migrate", "taskmill", "0001", verbosity=0)
        assert reloptions() == {}
    finally:
        call_command("migrate", "taskmill", verbosity=0)
    assert reloptions() == AUTOVACUUM | INDEX_CLEANUP


@pytest.mark.only_on("sqlite", "mysql")
@pytest.mark.django_db(transaction=True)
def test_other_databases__migrate_both_ways_with_nothing_to_set() -> None:
    try:
        call_command("migrate", "taskmill", "0001", verbosity=0)
    finally:
        call_command("migrate", "taskmill", verbosity=0)
    assert TaskRecord.objects.count() == 0  # the table is there and usable
