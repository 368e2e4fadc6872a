"""The PostgreSQL claim walks the claim index in order whatever the table's statistics say.

Statistics go stale whenever many tasks arrive between two ANALYZEs: the planner then
expects a handful of ready rows and would read and sort every one of them on every claim.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection, transaction

import taskmill
from taskmill.models import TaskRecord
from taskmill.queue import get_queue
from taskmill.queue.lease import ClaimRequest
from tests.testapp import tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.only_on("postgresql")]

TABLE = TaskRecord._meta.db_table
READY = 3000


def claim_index_reads() -> int:
    """Entries read from the claim index in this transaction so far."""
    with connection.cursor() as cursor:
        # The index's idx_tup_read, counted for the current transaction only.
        cursor.execute("SELECT pg_stat_get_xact_tuples_returned('taskmill_claim_idx'::regclass)")
        (reads,) = cursor.fetchone()
    return int(reads)


def setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        (value,) = cursor.fetchone()
    return str(value)


def test_claim__reads_only_the_rows_it_takes_after_a_burst_the_statistics_missed() -> None:
    # Statistics of an empty table, as a new project's are, or any table's whose ready rows
    # came after its last ANALYZE: no ready row as far as the planner knows.
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")
    taskmill.enqueue_many(tasks.noop, [((), {})] * READY)
    request = ClaimRequest(worker_id="w1", queue_names=("default",), limit=10, lease_seconds=30)

    with transaction.atomic():
        before = claim_index_reads()
        claimed = get_queue("default").claim(request)
        reads = claim_index_reads() - before
        sort_after = setting("enable_sort")

    assert len(claimed) == 10
    # A plan that sorts reads all 3,000 entries; the index's order needs the ten it takes.
    assert reads < 100, f"the claim read {reads} claim-index entries to take 10"
    # Inside a caller's transaction the claim puts the setting back.
    assert sort_after == "on"


def test_claim__in_autocommit_leaves_the_session_setting_alone() -> None:
    tasks.noop.enqueue()
    request = ClaimRequest(worker_id="w1", queue_names=("default",), limit=1, lease_seconds=30)

    assert len(get_queue("default").claim(request)) == 1
    assert setting("enable_sort") == "on"


@pytest.fixture
def server_side_binding(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The default connection, reopened with server-side binding (one statement a message)."""
    options = {**connection.settings_dict["OPTIONS"], "server_side_binding": True}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    connection.close()
    yield
    connection.close()  # the next test's connection binds on the client again


@pytest.mark.usefixtures("server_side_binding")
def test_claim__with_server_side_binding_also_reads_only_what_it_takes() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")
    taskmill.enqueue_many(tasks.noop, [((), {})] * READY)
    request = ClaimRequest(worker_id="w1", queue_names=("default",), limit=10, lease_seconds=30)

    with transaction.atomic():
        before = claim_index_reads()
        claimed = get_queue("default").claim(request)
        reads = claim_index_reads() - before
        sort_after = setting("enable_sort")

    assert type(connection.connection.cursor()).__name__ == "ServerBindingCursor"
    assert len(claimed) == 10
    assert reads < 100, f"the claim read {reads} claim-index entries to take 10"
    assert sort_after == "on"
