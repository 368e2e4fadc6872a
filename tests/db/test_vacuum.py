"""The worker's vacuum of the task table (taskmill/queue/vacuum.py): on PostgreSQL it clears
the claim index's dead entries without blocking claims; elsewhere there is nothing to do."""

import logging
from collections.abc import Iterator

import pytest
from django.db import connection

from taskmill import enqueue_many
from taskmill.models import TaskRecord
from taskmill.queue.postgres_vacuum import TableVacuum
from taskmill.queue.vacuum import open_table_vacuum
from taskmill.states import State
from tests.churn import (
    analyze,
    autovacuum_off,
    churn,
    claim_and_finish,
    claim_index_pages_read,
    flush_statistics,
    vacuum_count,
)
from tests.testapp.tasks import noop
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_autovacuum() -> Iterator[None]:
    if connection.vendor != "postgresql":
        yield
        return
    with autovacuum_off():
        yield


@pytest.mark.only_on("sqlite", "mysql")
def test_open_table_vacuum__none_where_there_are_no_dead_row_versions() -> None:
    assert open_table_vacuum("default") is None


@pytest.mark.only_on("postgresql")
def test_claim__scans_the_claim_index() -> None:
    churn(3000)
    analyze()
    noop.enqueue()

    assert claim_index_pages_read() is not None


@pytest.mark.only_on("postgresql")
def test_vacuum__clears_the_dead_claim_index_entries_each_claim_walks() -> None:
    churn(3000)
    analyze()
    noop.enqueue()
    flush_statistics()
    vacuum = open_table_vacuum("default")
    assert isinstance(vacuum, TableVacuum)
    walked_before = claim_index_pages_read()
    dead_before = vacuum.dead_rows()
    vacuums = vacuum_count()

    vacuum.start()
    wait_until(lambda: not vacuum.is_running(), timeout=60, message="the vacuum ending")

    assert dead_before >= 6000  # two dead versions per task
    assert vacuum_count() == vacuums + 1
    assert vacuum.dead_rows() < dead_before / 10
    walked_after = claim_index_pages_read()
    assert walked_before is not None
    assert walked_after is not None
    assert walked_before >= 10  # ~3,000 dead entries, ~160 a page
    assert walked_after <= 3  # the root, a leaf, and at most one level between


@pytest.mark.only_on("postgresql")
def test_vacuum__claims_go_on_while_it_runs_and_each_task_is_claimed_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    vacuum = open_table_vacuum("default")
    assert vacuum is not None
    ids: set[str] = set()
    claimed: list[str] = []
    claimed_while_running = 0

    def claim_during_a_vacuum() -> bool:
        nonlocal claimed_while_running
        churn(2000)  # work for the vacuum: dead versions in the table and in every index
        results = enqueue_many(noop, [((), {})] * 100)
        ids.update(str(result.id) for result in results)
        vacuum.start()
        while batch := claim_and_finish(limit=10):
            claimed.extend(str(task_id) for task_id in batch)
            claimed_while_running += len(batch) if vacuum.is_running() else 0
        wait_until(lambda: not vacuum.is_running(), timeout=60, message="the vacuum ending")
        return claimed_while_running > 0

    with caplog.at_level(logging.WARNING, logger="taskmill"):
        # A vacuum may end before the first claim does; then another round, with a deadline.
        wait_until(claim_during_a_vacuum, timeout=120, interval=0, message="claims overlapping")

    assert sorted(claimed) == sorted(ids)
    assert not TaskRecord.objects.exclude(state=State.SUCCEEDED).exists()
    assert not caplog.records  # no failure logged


@pytest.mark.only_on("postgresql")
def test_vacuum__close_cancels_a_running_vacuum_and_its_session_ends() -> None:
    churn(3000)
    vacuum = open_table_vacuum("default")
    assert vacuum is not None
    vacuum.start()
    assert vacuum.connection is not None
    pid = vacuum.connection.pgconn.backend_pid

    vacuum.close()

    assert vacuum.connection is None
    assert vacuum.is_running() is False

    def session_gone() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            return int(cursor.fetchone()[0]) == 0

    wait_until(session_gone, timeout=10, message="the vacuum's session ending")
