"""A worker stalled inside one of its transactions (SIGSTOP, swap, a frozen VM) holds its locks
for a lease at most: the server ends its session (PostgreSQL, MariaDB). Other workers' loops,
waiting on those locks, go on."""

import pytest
from django.db import DatabaseError, connection, transaction

from taskmill.exceptions import DatabaseUnavailable
from taskmill.models import TaskRecord
from taskmill.queue import get_queue
from taskmill.queue.errors import translate
from tests.lock_waits import in_other_session
from tests.supervisors import supervisor_in_process
from tests.testapp import tasks

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # SQLite: one writer locks the whole file, and nothing can end a stalled process's lock.
    pytest.mark.only_on("postgresql", "mysql"),
]

_BOUND_SQL = {
    "postgresql": "SHOW idle_in_transaction_session_timeout",
    "mysql": "SELECT @@SESSION.idle_transaction_timeout",
}


def _session_bound() -> str:
    with connection.cursor() as cursor:
        cursor.execute(_BOUND_SQL[connection.vendor])
        (value,) = cursor.fetchone()
    return str(value)


def test_a_session_idle_in_a_transaction_past_the_bound_is_ended_and_its_locks_go() -> None:
    task_id = tasks.noop.enqueue().id
    get_queue("default").end_stalled_transactions_after(1.0)

    locked: list[str] = []

    def stall_holding_the_rows_lock() -> None:
        with transaction.atomic():
            TaskRecord.objects.select_for_update().get(id=task_id)
            # This session now idles inside its transaction, holding the row's lock. Another
            # waits up to 20 s for it: had the server not ended this session after 1 s, the
            # wait would end with a lock-wait error, raised here.
            locked.extend(in_other_session(lambda: _lock_row(task_id), lock_wait=20))
            TaskRecord.objects.count()  # the ended session's next statement fails

    with pytest.raises(DatabaseError) as caught:
        stall_holding_the_rows_lock()

    assert locked == [task_id]
    # The worker's loop takes it for a lost connection: it reconnects, without a traceback.
    assert isinstance(translate(caught.value), DatabaseUnavailable)
    connection.close()


def _lock_row(task_id: str) -> list[str]:
    with transaction.atomic():
        rows = TaskRecord.objects.select_for_update().filter(id=task_id)
        return [str(row_id) for row_id in rows.values_list("id", flat=True)]


def test_the_supervisor_bounds_its_session_again_after_a_reconnect() -> None:
    if connection.vendor == "mysql" and not connection.mysql_is_mariadb:  # type: ignore[attr-defined]  # the stubs lack it
        pytest.skip("MySQL has no idle transaction timeout")
    supervisor = supervisor_in_process("fork")
    expected = {"postgresql": "30s", "mysql": "30"}[connection.vendor]  # LEASE_SECONDS

    supervisor._bound_stalled_transactions()
    assert _session_bound() == expected
    connection.close()
    supervisor._bound_stalled_transactions()

    assert _session_bound() == expected
    connection.close()  # the next tests' sessions are unbounded


def test_the_solo_pool_leaves_its_tasks_transactions_unbounded() -> None:
    connection.close()  # a session of its own, whatever earlier tests set
    supervisor_in_process("solo")._bound_stalled_transactions()

    assert _session_bound() in {"0", "0ms"}
