"""A worker started while its database can't be reached (restarting, failing over) or is
locked by another writer (SQLite) waits for it and then runs its tasks, instead of exiting."""

import socket
import sqlite3
from typing import Final

import pytest
from django.db import connection

from tests.chaos.forwarder import Forwarder
from tests.integration.helpers import state_of
from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.waiting import WaitUntil

pytestmark = pytest.mark.django_db(transaction=True)

# The database-fault tests' settings: SQLite's busy timeout is 1 s there.
SHORT_BUSY_TIMEOUT: Final = {"DJANGO_SETTINGS_MODULE": "tests.chaos.fault_settings"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# SQLite is a file: there is no server to be away. On MariaDB/MySQL, Django's system checks
# are the first to ask the server (its field checks): they wait too.
@pytest.mark.only_on("postgresql", "mysql")
def test_a_worker_started_before_its_database_answers_waits_then_runs_the_task(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    result = tasks.noop.enqueue()
    # The worker reaches the server through a port nothing listens on yet: refused, as while
    # a server restarts.
    port = _free_port()
    worker = worker_process("--concurrency", "1", env={"TASKMILL_TEST_DB_PORT": str(port)})
    wait_until(
        lambda: "database unavailable at start, retrying" in worker.output(),
        timeout=30,
        message=lambda: f"the worker retrying its start; its log: {worker.output()[-2000:]}",
    )
    forwarder = Forwarder(("127.0.0.1", int(connection.settings_dict["PORT"])))
    try:
        forwarder.listen("127.0.0.1", port)
        wait_until(
            lambda: state_of(result.id) == "succeeded",
            timeout=30,
            message=lambda: f"the task run once the database answered; log: {worker.output()}",
        )
        assert worker.popen.poll() is None, "the worker exited"
    finally:
        worker.stop()
        forwarder.close()


@pytest.mark.only_on("sqlite")
def test_a_worker_started_while_another_writer_holds_sqlites_lock_waits_then_runs_the_task(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    result = tasks.noop.enqueue()
    writer = sqlite3.connect(str(connection.settings_dict["NAME"]), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        # Django's system checks meet the lock first: they must not read it as "SQLite without
        # JSON" (fields.E180) and end the start.
        worker = worker_process("--concurrency", "1", env=SHORT_BUSY_TIMEOUT)
        wait_until(
            lambda: "database busy at start, retrying" in worker.output(),
            timeout=30,
            message=lambda: f"the worker retrying its start; its log: {worker.output()[-2000:]}",
        )
        writer.execute("COMMIT")
    finally:
        writer.close()
    wait_until(
        lambda: state_of(result.id) == "succeeded",
        timeout=30,
        message=lambda: f"the task run once the lock was let go; log: {worker.output()}",
    )
    assert worker.popen.poll() is None, "the worker exited"
