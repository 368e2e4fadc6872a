"""Timeouts, crashes and cancels kill only the task's child; the worker goes on."""

import time
from pathlib import Path

import pytest

import taskmill
from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.waiting import WaitUntil

from .helpers import error_paths, is_alive, record, started_pids, state_of, summary

pytestmark = pytest.mark.django_db(transaction=True)


def test_timeout_kills_the_child_and_records_timeout_error(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    hung = tasks.hang_with_timeout.enqueue(str(tmp_path))
    worker_process("--concurrency", "1")
    (pid,) = wait_until(lambda: started_pids(tmp_path), timeout=30)
    wait_until(lambda: state_of(hung.id) == "failed", timeout=30, message="timeout recorded")
    assert error_paths(hung.id) == ["builtins.TimeoutError"]
    assert "timeout of 1.0 s" in record(hung.id).errors[0]["traceback"]
    wait_until(lambda: not is_alive(pid), timeout=10, message="killed child gone")
    after = tasks.add.enqueue(2, 2)
    wait_until(lambda: state_of(after.id) == "succeeded", timeout=30, message="fresh child")


@pytest.mark.parametrize(
    ("task_name", "described"),
    [("exit_hard", "exited with code 3"), ("segfault", "killed by SIGSEGV")],
)
def test_crashing_task_fails_alone(
    worker_process: WorkerFactory, wait_until: WaitUntil, task_name: str, described: str
) -> None:
    crashed = getattr(tasks, task_name).enqueue()
    neighbour = tasks.add.enqueue(1, 2)
    worker_process("--concurrency", "1")
    wait_until(lambda: state_of(crashed.id) == "failed", timeout=40, message="crash recorded")
    assert error_paths(crashed.id) == ["taskmill.exceptions.TaskCrashed"]
    assert described in record(crashed.id).errors[0]["traceback"]
    wait_until(lambda: state_of(neighbour.id) == "succeeded", timeout=40)


def test_cancel_running_task_kills_it_within_two_seconds(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocked = tasks.block_until_released.enqueue(str(tmp_path))
    worker_process("--concurrency", "1")
    (pid,) = wait_until(lambda: started_pids(tmp_path), timeout=30)
    wait_until(lambda: state_of(blocked.id) == "running", timeout=10)
    asked = time.monotonic()
    assert taskmill.cancel(blocked.id) is True
    wait_until(
        lambda: state_of(blocked.id) == "cancelled",
        timeout=20,
        message=lambda: f"cancel recorded: {summary(blocked.id)}",
    )
    assert time.monotonic() - asked < 2 + 1.5  # 2 s kill grace, plus polling slack
    assert error_paths(blocked.id) == ["taskmill.exceptions.TaskCancelled"]
    assert not is_alive(pid)
    blocked_result = tasks.block_until_released.get_result(blocked.id)
    assert blocked_result.status == "FAILED"
    assert taskmill.cancel(blocked.id) is False


def test_max_tasks_per_child_recycles_children(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    results = [tasks.ledger_task.enqueue(f"recycle-{i}") for i in range(6)]
    assert (
        worker_process("--burst", "--concurrency", "1", "--max-tasks-per-child", "2").wait(30) == 0
    )
    from tests.testapp.models import LedgerEntry

    pids = list(LedgerEntry.objects.order_by("id").values_list("pid", flat=True))
    assert len(pids) == 6
    assert len(set(pids)) == 3, pids
    assert all(state_of(r.id) == "succeeded" for r in results)
