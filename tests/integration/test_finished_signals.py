"""task_finished from a worker for every final outcome, whoever decided it: a timeout, a
crash, a cancel of a running task, a rescue without attempts left, a dependant cancelled
because its dependency failed. One signal per task, sent after the outcome is recorded."""

import signal
from pathlib import Path

import pytest

import taskmill
from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.testapp.models import SignalRecord
from tests.waiting import WaitUntil

from .helpers import short_lease_env, started_pids, state_of

pytestmark = pytest.mark.django_db(transaction=True)

RECORD_SIGNALS = {"TASKMILL_TEST_RECORD_SIGNALS": "1"}


def _finished(result_id: str) -> list[SignalRecord]:
    return list(SignalRecord.objects.filter(result_id=result_id, signal="finished"))


def _wait_for_finished(wait_until: WaitUntil, *result_ids: str) -> dict[str, SignalRecord]:
    wait_until(
        lambda: all(_finished(result_id) for result_id in result_ids),
        timeout=40,
        message=lambda: f"task_finished for {result_ids}: {list(SignalRecord.objects.values())}",
    )
    found = {}
    for result_id in result_ids:
        (only,) = _finished(result_id)  # exactly one per task
        found[result_id] = only
    return found


def test_timeout_crash_and_running_cancel_each_send_task_finished_once(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    timed_out = tasks.hang_with_timeout.enqueue(str(tmp_path / "timeout"))
    crashed = tasks.exit_hard.enqueue(3)
    cancelled = tasks.block_until_released.enqueue(str(tmp_path / "cancel"))
    for gate in ("timeout", "cancel"):
        (tmp_path / gate).mkdir()
    worker = worker_process("--concurrency", "3", env=RECORD_SIGNALS)
    wait_until(lambda: started_pids(tmp_path / "cancel"), timeout=30, message="cancel target ran")
    assert taskmill.cancel(cancelled.id) is True
    found = _wait_for_finished(wait_until, timed_out.id, crashed.id, cancelled.id)
    for result_id in (timed_out.id, crashed.id, cancelled.id):
        assert state_of(result_id) in {"failed", "cancelled"}
        assert found[result_id].status == "FAILED"
        assert found[result_id].sender == "taskmill.backend.DatabaseBackend"
    worker.stop()


def test_rescue_without_attempts_left_sends_task_finished(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    lost = tasks.block_until_released.enqueue(str(tmp_path))
    first = worker_process("--concurrency", "1", env=short_lease_env())
    wait_until(lambda: started_pids(tmp_path), timeout=30)
    first.send_group(signal.SIGKILL)
    rescuer = worker_process("--concurrency", "1", env={**short_lease_env(), **RECORD_SIGNALS})
    found = _wait_for_finished(wait_until, lost.id)
    assert state_of(lost.id) == "failed"
    assert found[lost.id].status == "FAILED"
    rescuer.stop()


def test_dependants_cancelled_by_a_failed_dependency_send_task_finished(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    failing = tasks.fail_value_error.enqueue()
    dependant = tasks.noop.using(depends_on=[failing]).enqueue()
    # Cancelled in turn: its own dependency was cancelled, not failed, but it didn't succeed.
    second = tasks.noop.using(depends_on=[dependant]).enqueue()
    worker = worker_process("--concurrency", "1", env=RECORD_SIGNALS)
    found = _wait_for_finished(wait_until, failing.id, dependant.id, second.id)
    assert state_of(dependant.id) == "cancelled"
    assert state_of(second.id) == "cancelled"
    assert {found[r].status for r in (failing.id, dependant.id, second.id)} == {"FAILED"}
    assert not SignalRecord.objects.filter(result_id=dependant.id, signal="started").exists()
    worker.stop()
