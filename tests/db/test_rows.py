"""Claimed rows read into records: the same values, types and state as the ORM gives."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from taskmill.models import TaskRecord, build_record, record_columns
from taskmill.queue import get_queue
from taskmill.queue.lease import ClaimRequest
from taskmill.queue.rows import RowReader
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def _columns(record: TaskRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record_columns()}


def test_claim_reads_each_column_as_the_orm_does() -> None:
    result = tasks.echo.using(priority=3).enqueue(2, {"nested": [1.5, None, "é", {"deep": True}]})
    TaskRecord.objects.filter(id=result.id).update(
        progress={"done": 1, "total": 3, "message": "a third"},
        errors=[{"exception_class_path": "builtins.ValueError", "traceback": "...", "attempt": 0}],
        object_id="42",
        scheduled_for=timezone.now(),
    )

    [claimed] = get_queue("default").claim(
        ClaimRequest(worker_id="w1", queue_names=("default",), limit=5, lease_seconds=30)
    )

    loaded = TaskRecord.objects.get(id=result.id)
    assert _columns(claimed) == _columns(loaded)
    for name, value in _columns(loaded).items():
        assert type(getattr(claimed, name)) is type(value), name
    assert not claimed._state.adding
    assert claimed._state.db == "default"


def test_records__leaves_out_unknown_columns_and_defers_missing_ones_as_the_orm_does() -> None:
    # A worker running older code than the latest migration: the table has a column the
    # model doesn't know, or lacks one it does.
    result = tasks.echo.enqueue(7)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, task_path, args, 1 AS added_by_a_newer_migration FROM taskmill_taskrecord"
        )
        [record] = RowReader().records(cursor, "default")

    assert str(record.id) == result.id
    assert (record.task_path, record.args) == ("tests.testapp.tasks.echo", [7])
    assert not hasattr(record, "added_by_a_newer_migration")
    assert record.get_deferred_fields() >= {"kwargs", "state"}
    assert record.state == "ready"  # read on first access, as a deferred field is


def test_build_record__refuses_a_missing_column_rather_than_querying_for_it_later() -> None:
    columns = _columns(TaskRecord(task_path="x", backend="default", queue_name="default"))
    del columns["progress"]
    with pytest.raises(ValueError, match="missing \\['progress'\\]"):
        build_record(columns)


def test_build_record__is_unsaved_without_a_database() -> None:
    columns = _columns(TaskRecord(task_path="x", backend="default", queue_name="default"))
    record = build_record(columns)
    assert record._state.adding
    assert record._state.db is None
    assert _columns(record) == columns
