"""The task list stays cheap on huge tables: no unbounded COUNT or DISTINCT, few queries.

The figures for a million rows come from `python -m bench.admin_scale`; these tests check the
SQL shape that makes them hold, on every database.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from taskmill.admin.paging import CappedPaginator
from taskmill.models import TaskRecord
from taskmill.states import State
from tests.db.rows import set_state
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:taskmill_taskrecord_changelist")
TABLE = TaskRecord._meta.db_table
QUERY_BUDGET = 10


def task_queries(client: Client, **params: str) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return response.content.decode(), [
        query["sql"] for query in captured.captured_queries if TABLE in query["sql"]
    ]


def unbounded(sql: str) -> bool:
    """Tell whether a query aggregates over the table without a LIMIT inside."""
    upper = sql.upper()
    return ("COUNT(" in upper or "DISTINCT" in upper) and "LIMIT" not in upper


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"state__exact": "failed"},
        {"task": "tests.testapp.tasks.add", "queue": "default", "enqueued": "day"},
        {"q": "testapp.tasks"},
    ],
    ids=["plain", "state", "task-queue-date", "search"],
)
def test_changelist__counts_and_filter_choices_are_bounded(
    admin_client: Client, params: dict[str, str]
) -> None:
    for number in range(5):
        tasks.add.enqueue(number, 1)

    with CaptureQueriesContext(connection) as everything:
        _, queries = task_queries(admin_client, **params)

    assert queries
    assert [sql for sql in queries if unbounded(sql)] == []
    assert len(everything) <= QUERY_BUDGET


def test_changelist__a_count_past_the_cap_reads_as_more(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CappedPaginator, "cap", 3)
    for _ in range(4):
        tasks.noop.enqueue()

    capped, _ = task_queries(admin_client)
    monkeypatch.setattr(CappedPaginator, "cap", 4)
    exact, _ = task_queries(admin_client)

    assert '<span class="taskmill-count">3+</span> tasks' in capped
    assert '<span class="taskmill-count">4</span> tasks' in exact


def test_changelist__filters_by_task_queue_and_enqueue_time(admin_client: Client) -> None:
    report, added, old = (
        tasks.build_report.enqueue(1),
        tasks.add.enqueue(1, 1),
        tasks.noop.enqueue(),
    )
    TaskRecord.objects.filter(id=old.id).update(enqueued_at=timezone.now() - timedelta(days=2))
    set_state(added, State.SUCCEEDED, attempts=1)

    by_task, _ = task_queries(admin_client, task="tests.testapp.tasks.add")
    by_queue, _ = task_queries(admin_client, queue="reports")
    by_day, _ = task_queries(admin_client, enqueued="day")
    by_week, _ = task_queries(admin_client, enqueued="week")

    assert added.id in by_task
    assert report.id not in by_task
    assert report.id in by_queue
    assert added.id not in by_queue
    assert old.id not in by_day
    assert added.id in by_day
    assert old.id in by_week
    # The choices offered come from the newest rows.
    assert "?task=tests.testapp.tasks.build_report" in by_task
    assert "?queue=reports" in by_task


@pytest.mark.only_on("postgresql")
def test_changelist__the_page_is_read_from_the_enqueued_index(admin_client: Client) -> None:
    for _ in range(3):
        tasks.noop.enqueue()
    _, queries = task_queries(admin_client)
    # The rows of the page: every column, in the list's order.
    (page_query,) = [sql for sql in queries if "ORDER BY" in sql and '."progress"' in sql]

    with connection.cursor() as cursor:
        # A few rows are cheaper to scan, or to sort, than to read through any index; rule
        # both out to see whether the index can serve the list's order. Without the second,
        # the plan depends on the table's statistics, which earlier tests' rows change.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {page_query}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "taskmill_enqueued_idx" in plan
    assert "Sort" not in plan
