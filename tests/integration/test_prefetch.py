"""Claiming ahead (--prefetch): while the queue is busy, a worker holds a few claimed tasks for
its next free child. Such a task can still be cancelled, and goes back on shutdown unrun."""

import signal
from pathlib import Path

import pytest

import taskmill
from tests.processes import WorkerFactory, WorkerProcess
from tests.testapp import tasks
from tests.waiting import WaitUntil

from .helpers import error_paths, record, started_pids, state_of

pytestmark = pytest.mark.django_db(transaction=True)


def _claimed_ahead(
    worker_process: WorkerFactory, wait_until: WaitUntil, gate: Path, *args: str
) -> tuple[str, str, WorkerProcess]:
    """A worker with one child busy at the gate and the next task claimed ahead."""
    blocking = tasks.block_until_released.enqueue(str(gate))
    waiting = tasks.add.enqueue(1, 1)
    worker = worker_process("--concurrency", "1", *args)
    wait_until(lambda: started_pids(gate), timeout=30, message="first task at the gate")
    return blocking.id, waiting.id, worker


def test_a_busy_queue_is_claimed_ahead_and_run_in_order(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocking, waiting, _ = _claimed_ahead(worker_process, wait_until, tmp_path, "--prefetch", "1")
    wait_until(lambda: state_of(waiting) == "running", timeout=10, message="claimed ahead")

    (tmp_path / "release").touch()

    wait_until(lambda: state_of(waiting) == "succeeded", timeout=30)
    assert state_of(blocking) == "succeeded"
    assert record(waiting).return_value == 2


def test_prefetch_zero_claims_only_for_free_children(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocking, waiting, worker = _claimed_ahead(
        worker_process, wait_until, tmp_path, "--prefetch", "0"
    )
    # A second worker sees the task still waiting: nothing holds it.
    helper = worker_process("--concurrency", "1")
    wait_until(lambda: state_of(waiting) == "succeeded", timeout=30, message="other worker ran it")
    assert record(waiting).worker_ids[0].split(":")[1] == str(helper.pid)
    assert state_of(blocking) == "running"
    (tmp_path / "release").touch()
    wait_until(lambda: state_of(blocking) == "succeeded", timeout=30)
    assert record(blocking).worker_ids[0].split(":")[1] == str(worker.pid)


def test_a_task_claimed_ahead_can_be_cancelled_and_never_runs(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocking, waiting, _ = _claimed_ahead(worker_process, wait_until, tmp_path, "--prefetch", "1")
    wait_until(lambda: state_of(waiting) == "running", timeout=10, message="claimed ahead")

    assert taskmill.cancel(waiting) is True

    wait_until(lambda: state_of(waiting) == "cancelled", timeout=30, message="cancelled")
    assert error_paths(waiting) == ["taskmill.exceptions.TaskCancelled"]
    assert "before it started" in record(waiting).errors[0]["traceback"]
    assert state_of(blocking) == "running", "the running task was not the one killed"
    (tmp_path / "release").touch()
    wait_until(lambda: state_of(blocking) == "succeeded", timeout=30)


def test_shutdown_hands_tasks_claimed_ahead_back_unrun(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocking, waiting, worker = _claimed_ahead(
        worker_process, wait_until, tmp_path, "--prefetch", "1"
    )
    wait_until(lambda: state_of(waiting) == "running", timeout=10, message="claimed ahead")

    worker.send(signal.SIGTERM)

    # Handed back at once, while the running task still has its grace period.
    wait_until(lambda: state_of(waiting) == "ready", timeout=10, message="handed back")
    handed_back = record(waiting)
    assert (handed_back.attempts, handed_back.worker_ids, handed_back.errors) == (0, [], [])
    assert state_of(blocking) == "running"
    (tmp_path / "release").touch()
    assert worker.wait() == 0
    assert state_of(blocking) == "succeeded"
