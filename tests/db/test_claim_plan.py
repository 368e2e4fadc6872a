"""The PostgreSQL claim walks the claim index in order whatever the table's statistics say.

Statistics go stale whenever many tasks arrive between two ANALYZEs: the planner then
expects a handful of ready rows and would read and sort every one of them on every claim.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
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


@pytest.fixture(params=["client", "server"])
def binding(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Where the connection binds parameters: on the client (Django's default) or on the
    server (OPTIONS["server_side_binding"], one statement per message)."""
    # Set either way: scripts/test runs one stage with server-side binding in the settings.
    server = request.param == "server"
    options = {**connection.settings_dict["OPTIONS"], "server_side_binding": server}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    connection.close()
    yield request.param
    connection.close()  # the next test's connection is made from the settings as they were


def test_claim__reads_only_the_rows_it_takes_after_a_burst_the_statistics_missed(
    binding: str,
) -> None:
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

    assert isinstance(connection.connection.cursor(), psycopg.ClientCursor) == (binding == "client")
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
