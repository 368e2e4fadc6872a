"""Signals and crashes of the worker itself: graceful drain, hand-back, rescue, fencing."""

import signal
from pathlib import Path

import pytest
from django.db import connection

from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.waiting import WaitUntil

from .helpers import (
    children_of,
    error_paths,
    is_alive,
    record,
    short_lease_env,
    started_pids,
    state_of,
    summary,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _release(gate: Path) -> None:
    (gate / "release").touch()


def _sessions() -> list[tuple[object, ...]]:
    """The other sessions on this test's database: each one's state, how long it has been in
    it or in its transaction, and its statement (server databases only).

    A worker stalled inside a transaction can hold a lock every other worker's loop then waits
    on (it did: the first leader's INSERT, and on MariaDB a rescue pass's locks); this shows
    who holds and who waits. The workers' logs printed with a failure are read after the
    paused worker was let go (SIGCONT), so their last lines may come from after the timeout.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute(
                "SELECT p.id, p.command, p.time, t.trx_state, t.trx_started, "
                "t.trx_rows_locked, left(p.info, 120), "
                "(SELECT group_concat(concat_ws(' ', l.lock_mode, l.lock_index, l.lock_data)) "
                "FROM information_schema.innodb_locks AS l WHERE l.lock_trx_id = t.trx_id) "
                "FROM information_schema.processlist AS p LEFT JOIN "
                "information_schema.innodb_trx AS t ON t.trx_mysql_thread_id = p.id "
                "WHERE p.db = database() AND p.id <> connection_id()"
            )
        else:
            cursor.execute(
                "SELECT pid, state, wait_event, now() - xact_start, left(query, 120) "
                "FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        return list(cursor.fetchall())


def test_sigterm_lets_the_running_task_finish_then_exits_zero(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocked = tasks.block_until_released.enqueue(str(tmp_path))
    queued = tasks.noop.enqueue()
    worker = worker_process("--concurrency", "1", "--grace", "30")
    wait_until(lambda: started_pids(tmp_path), timeout=30)
    worker.send(signal.SIGTERM)
    wait_until(lambda: "stopping" in worker.output(), timeout=10)
    _release(tmp_path)
    assert worker.wait(20) == 0, worker.output()
    assert state_of(blocked.id) == "succeeded"
    assert state_of(queued.id) == "ready", "no new claims after SIGTERM"


def test_task_still_running_after_grace_is_handed_back_unconsumed(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocked = tasks.block_until_released.enqueue(str(tmp_path))
    worker = worker_process("--concurrency", "1", "--grace", "0.5")
    (pid,) = wait_until(lambda: started_pids(tmp_path), timeout=30)
    worker.send(signal.SIGTERM)
    assert worker.wait(20) == 0, worker.output()
    row = record(blocked.id)
    assert row.state == "ready"
    assert row.attempts == 0
    assert row.worker_ids == []
    assert row.lease_owner is None
    assert not is_alive(pid)
    # Not counted, but it ran part-way: the record keeps a note of the attempt.
    (note,) = row.handed_back
    assert note["attempt"] == 1
    assert f"worker_id={note['worker_id']}" in worker.output()


def test_second_sigint_stops_at_once(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocked = tasks.block_until_released.enqueue(str(tmp_path))
    worker = worker_process("--concurrency", "1", "--grace", "600")
    (pid,) = wait_until(lambda: started_pids(tmp_path), timeout=30)
    worker.send(signal.SIGINT)
    wait_until(lambda: "stopping" in worker.output(), timeout=10)
    worker.send(signal.SIGINT)
    assert worker.wait(10) == 0, worker.output()
    assert state_of(blocked.id) == "ready"
    assert not is_alive(pid)


def test_children_die_with_a_killed_supervisor_and_the_task_is_rescued(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocked = tasks.block_until_released.using(max_attempts=2).enqueue(str(tmp_path))
    first = worker_process("--concurrency", "1", env=short_lease_env())
    (pid,) = wait_until(lambda: started_pids(tmp_path), timeout=30)
    assert pid in children_of(first.pid)
    first.send(signal.SIGKILL)
    wait_until(lambda: not is_alive(pid), timeout=10, message="child died with its supervisor")
    for started in tmp_path.glob("started-*"):
        started.unlink()
    worker_process("--concurrency", "1", env=short_lease_env())
    wait_until(lambda: started_pids(tmp_path), timeout=40, message="rescued and run again")
    _release(tmp_path)
    wait_until(lambda: state_of(blocked.id) == "succeeded", timeout=30)
    row = record(blocked.id)
    assert row.attempts == 2
    assert error_paths(blocked.id) == ["taskmill.exceptions.WorkerLost"]
    assert row.errors[0]["attempt"] == 1
    assert len(row.worker_ids) == 2
    assert row.worker_ids[0] != row.worker_ids[1]


def test_rescue_without_attempts_left_fails_with_worker_lost(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocked = tasks.block_until_released.enqueue(str(tmp_path))
    first = worker_process("--concurrency", "1", env=short_lease_env())
    wait_until(lambda: started_pids(tmp_path), timeout=30)
    first.send_group(signal.SIGKILL)
    worker_process("--concurrency", "1", env=short_lease_env())
    wait_until(
        lambda: state_of(blocked.id) == "failed",
        timeout=40,
        message=lambda: f"rescued: {summary(blocked.id)}",
    )
    assert error_paths(blocked.id) == ["taskmill.exceptions.WorkerLost"]


# On SQLite a process frozen while it holds the single write lock stops every other writer
# too, so no rescue can happen until it resumes: the scenario needs a server database. The
# pause lands in the paused worker's first loop turn, right after its claim, often inside a
# transaction of its rescue pass or leader election: tests/db's "stalled" tests prove that
# none of those holds a lock the rescuer waits on. The fence itself is proven on every
# database by tests/db/test_queue_contract.py::test_finish__lease_lost_leaves_record_untouched.
@pytest.mark.only_on("postgresql", "mysql")
def test_paused_worker_cannot_overwrite_the_rescued_attempt(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocked = tasks.block_until_released.using(max_attempts=2).enqueue(str(tmp_path))
    paused = worker_process("--concurrency", "1", env=short_lease_env())
    wait_until(lambda: len(started_pids(tmp_path)) == 1, timeout=30)
    paused.send(signal.SIGSTOP)
    try:
        rescuer = worker_process("--concurrency", "1", env=short_lease_env())
        wait_until(
            lambda: len(started_pids(tmp_path)) == 2,
            timeout=40,
            message=lambda: (
                f"second attempt started: {summary(blocked.id)}; sessions: {_sessions()}"
            ),
        )
        _release(tmp_path)
        wait_until(lambda: state_of(blocked.id) == "succeeded", timeout=30)
    finally:
        paused.send(signal.SIGCONT)
    wait_until(
        lambda: "lease lost" in paused.output(),
        timeout=30,
        message="the paused worker noticed it lost the lease",
    )
    row = record(blocked.id)
    assert row.attempts == 2
    assert error_paths(blocked.id) == ["taskmill.exceptions.WorkerLost"]
    assert row.worker_ids[1] in rescuer.output() or len(row.worker_ids) == 2
    assert row.state == "succeeded"
