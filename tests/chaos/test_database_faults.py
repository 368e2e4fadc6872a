"""The database going away mid-run: the worker logs it, reconnects with backoff and goes on.

Nothing is lost: every task ends succeeded, each run exactly once per recorded attempt.
"""

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count

import taskmill
from taskmill.models import TaskRecord
from tests.processes import WorkerFactory, WorkerProcess
from tests.testapp import tasks
from tests.testapp.models import LedgerEntry
from tests.waiting import WaitUntil

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = 40
PG_CTLCLUSTER = shutil.which("pg_ctlcluster") or "/usr/bin/pg_ctlcluster"


def _enqueue(prefix: str) -> list[str]:
    calls: list[tuple[tuple[str], dict[str, object]]] = [
        ((f"{prefix}-{i}",), {}) for i in range(BATCH)
    ]
    # A task whose own query meets the dropped connection fails that attempt; the retry runs
    # on a fresh connection.
    flaky_safe = tasks.ledger_task.using(max_attempts=3, retry_delay=0.1)
    return [result.id for result in taskmill.enqueue_many(flaky_safe, calls)]


def _all_succeeded(ids: list[str]) -> bool:
    connection.close_if_unusable_or_obsolete()
    return TaskRecord.objects.filter(id__in=ids, state="succeeded").count() == len(ids)


def _assert_each_ran_once_per_success(ids: list[str]) -> None:
    keys = list(TaskRecord.objects.filter(id__in=ids).values_list("args", flat=True))
    counts = dict(
        LedgerEntry.objects.filter(key__in=[k[0] for k in keys])
        .values_list("key")
        .annotate(n=Count("id"))
        .order_by()
    )
    assert len(counts) == len(ids)
    assert set(counts.values()) == {1}


def _reconnected(worker: WorkerProcess) -> bool:
    return "database error, reconnecting" in worker.output()


def _pg_cluster() -> tuple[str, str]:
    (version,) = [p.name for p in Path("/etc/postgresql").iterdir()]
    return version, "main"


@pytest.fixture
def postgres_restarter() -> Iterator[None]:
    """Make sure PostgreSQL runs again after the test, whatever happened in it."""
    yield
    version, cluster = _pg_cluster()
    status = subprocess.run(
        [PG_CTLCLUSTER, "--skip-systemctl-redirect", version, cluster, "status"],
        check=False,
        capture_output=True,
    )
    if status.returncode != 0:
        subprocess.run(
            [PG_CTLCLUSTER, "--skip-systemctl-redirect", version, cluster, "start"],
            check=True,
            capture_output=True,
        )
    connection.close()


@pytest.mark.only_on("postgresql")
@pytest.mark.usefixtures("postgres_restarter")
def test_worker_survives_a_postgresql_restart(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    worker = worker_process("--concurrency", "2")
    before = _enqueue("before")
    wait_until(lambda: _all_succeeded(before), timeout=60)
    version, cluster = _pg_cluster()
    subprocess.run(
        [
            PG_CTLCLUSTER,
            "--skip-systemctl-redirect",
            version,
            cluster,
            "restart",
            "--",
            "-m",
            "fast",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    connection.close()
    after = wait_until(lambda: _try_enqueue("after"), timeout=60, message="enqueue after restart")
    assert after is not None
    wait_until(lambda: _all_succeeded(after), timeout=120, message="tasks after the restart")
    assert _reconnected(worker)
    _assert_each_ran_once_per_success(before + after)


def _try_enqueue(prefix: str) -> list[str] | None:
    try:
        return _enqueue(prefix)
    except Exception:  # the server may still be starting; the wait retries
        connection.close()
        return None


@pytest.mark.only_on("postgresql", "mysql")
def test_worker_survives_its_connections_being_killed(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    worker = worker_process("--concurrency", "2")
    first = _enqueue("first")
    wait_until(lambda: _all_succeeded(first), timeout=60)
    killed = _kill_other_connections()
    assert killed > 0
    second = _enqueue("second")
    wait_until(lambda: _all_succeeded(second), timeout=120, message="tasks after the kill")
    wait_until(lambda: _reconnected(worker), timeout=20)
    _assert_each_ran_once_per_success(first + second)


def _kill_other_connections() -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT id FROM information_schema.processlist WHERE db = DATABASE() "
            "AND id <> CONNECTION_ID()"
        )
        ids = [row[0] for row in cursor.fetchall()]
        for connection_id in ids:
            cursor.execute("KILL %s", [connection_id])
        return len(ids)


def test_sqlite_writer_holding_the_lock_only_delays_the_worker(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("a long write lock is a SQLite matter")
    worker_process("--concurrency", "2")
    ids = _enqueue("locked")
    with connection.cursor() as cursor:
        cursor.execute("BEGIN IMMEDIATE")
        time.sleep(1.0)  # hold the write lock while the worker tries to claim and record
        cursor.execute("COMMIT")
    wait_until(lambda: _all_succeeded(ids), timeout=120)
    _assert_each_ran_once_per_success(ids)
