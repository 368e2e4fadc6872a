"""Pipelined dispatch (--pipeline-depth): a child holds several tasks and runs them in turn.

Each test makes a child hold tasks queued behind the one it runs (the worker's debug log
says how many it held), then checks that nothing is lost, run twice, run when it shouldn't
be, or mixed up: output, timeouts, cancels, crashes, shutdown, recycling.
"""

import os
import re
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import taskmill
from tests.processes import WorkerFactory, WorkerProcess
from tests.testapp import tasks
from tests.testapp.models import LedgerEntry
from tests.waiting import WaitUntil

from .helpers import captured, error_paths, record, started_pids, state_of, summary

pytestmark = pytest.mark.django_db(transaction=True)

HELD = re.compile(r"tasks dispatched pid=(\d+) count=\d+ held=(\d+)")


def most_held(worker: WorkerProcess) -> int:
    """The most tasks one child held at once, from the worker's debug log."""
    return max((int(held) for _, held in HELD.findall(worker.output())), default=0)


def _is_in_state(result_id: str, state: str) -> Callable[[], bool]:
    return lambda: state_of(result_id) == state


def _assert_ran_once(wait_until: WaitUntil, result_ids: list[str]) -> None:
    for result_id in result_ids:
        wait_until(_is_in_state(result_id, "succeeded"), timeout=30)
        ran = record(result_id)
        assert (ran.attempts, len(ran.worker_ids), ran.handed_back) == (1, 1, []), summary(
            result_id
        )


def _queued_behind_a_gate(
    worker_process: WorkerFactory, wait_until: WaitUntil, gate: Path, keys: list[str]
) -> tuple[str, list[str], WorkerProcess, int]:
    """One child running a task at the gate, with ledger tasks queued behind it in the same
    child; return the gate task, the ledger tasks, the worker and the child's pid."""
    blocking = tasks.block_until_released.enqueue(str(gate))
    queued = [tasks.ledger_task.enqueue(key).id for key in keys]
    depth = str(len(keys) + 1)
    worker = worker_process(
        "--concurrency", "1", "--pipeline-depth", depth, "--prefetch", str(len(keys)), "-v", "3"
    )
    (pid,) = wait_until(lambda: started_pids(gate), timeout=30, message="first task at the gate")
    wait_until(
        lambda: most_held(worker) == len(keys) + 1,
        timeout=10,
        message=lambda: f"tasks queued in the child:\n{worker.output()[-2000:]}",
    )
    return blocking.id, queued, worker, pid


def test_each_task_keeps_exactly_its_own_output(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    results = {f"t{i}": tasks.write_everywhere.enqueue(f"t{i}").id for i in range(40)}

    worker = worker_process(
        "--burst",
        "--concurrency",
        "2",
        "--pipeline-depth",
        "8",
        "--prefetch",
        "16",
        "-v",
        "3",
        env={"TASKMILL_TEST_PRINT_FINISHED": "1"},
    )

    assert worker.wait(60) == 0
    assert most_held(worker) > 1, "no child held more than one task: nothing was pipelined"
    for tag, result_id in results.items():
        assert state_of(result_id) == "succeeded", summary(result_id)
        assert captured(result_id) == {
            "stdout": f"out {tag}\nsub {tag}\n",
            "stderr": f"err {tag}\n",
            "log": f"INFO tests.testapp.tasks: log {tag}\n",
        }, tag
    # task_finished receivers ran between tasks: their output reached the console instead.
    assert sum(f"announced {result_id}" in worker.output() for result_id in results.values())


def test_a_head_task_timing_out_sends_those_queued_behind_it_elsewhere(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    hung = tasks.hang_with_timeout.enqueue(str(tmp_path))
    queued = [tasks.ledger_task.enqueue(f"after-timeout-{i}").id for i in range(3)]
    worker = worker_process(
        "--concurrency", "1", "--pipeline-depth", "4", "--prefetch", "3", "-v", "3"
    )
    (pid,) = wait_until(lambda: started_pids(tmp_path), timeout=30)
    wait_until(lambda: most_held(worker) == 4, timeout=10, message="queued behind the hung task")

    wait_until(lambda: state_of(hung.id) == "failed", timeout=30, message="timeout recorded")
    assert error_paths(hung.id) == ["builtins.TimeoutError"]
    # Never begun in the killed child: no attempt used, nothing noted.
    _assert_ran_once(wait_until, queued)
    entries = LedgerEntry.objects.filter(key__startswith="after-timeout-")
    assert entries.count() == 3
    assert pid not in set(entries.values_list("pid", flat=True))


def test_a_task_queued_in_a_child_can_be_cancelled_and_never_runs(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    blocking, (cancelled, after), _, _ = _queued_behind_a_gate(
        worker_process, wait_until, tmp_path, ["cancelled-in-child", "after-the-cancel"]
    )

    assert taskmill.cancel(cancelled) is True

    wait_until(lambda: state_of(cancelled) == "cancelled", timeout=30, message="cancelled")
    assert error_paths(cancelled) == ["taskmill.exceptions.TaskCancelled"]
    assert "before it started" in record(cancelled).errors[0]["traceback"]
    assert state_of(blocking) == "running", "the running task was not the one killed"
    (tmp_path / "release").touch()
    wait_until(lambda: state_of(after) == "succeeded", timeout=30)
    assert state_of(blocking) == "succeeded"
    assert not LedgerEntry.objects.filter(key="cancelled-in-child").exists()


def test_killing_a_child_sends_its_queued_tasks_elsewhere_with_no_attempt_used(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    keys = [f"after-kill-{i}" for i in range(3)]
    blocking, queued, _, pid = _queued_behind_a_gate(worker_process, wait_until, tmp_path, keys)

    os.kill(pid, signal.SIGKILL)

    wait_until(lambda: state_of(blocking) == "failed", timeout=30, message="crash recorded")
    assert error_paths(blocking) == ["taskmill.exceptions.TaskCrashed"]
    _assert_ran_once(wait_until, queued)
    entries = LedgerEntry.objects.filter(key__in=keys)
    assert sorted(entries.values_list("key", flat=True)) == keys
    assert pid not in set(entries.values_list("pid", flat=True))


def test_graceful_stop_hands_back_tasks_queued_in_children_unrun(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    keys = [f"handed-back-{i}" for i in range(3)]
    blocking, queued, worker, _ = _queued_behind_a_gate(worker_process, wait_until, tmp_path, keys)

    worker.send(signal.SIGTERM)

    # Handed back at once, while the running task still has its grace period.
    for result_id in queued:
        wait_until(_is_in_state(result_id, "ready"), timeout=10, message="handed back")
        back = record(result_id)
        assert (back.attempts, back.worker_ids, back.errors, back.handed_back) == (0, [], [], [])
    assert state_of(blocking) == "running"
    (tmp_path / "release").touch()
    assert worker.wait() == 0
    assert state_of(blocking) == "succeeded"
    assert not LedgerEntry.objects.filter(key__in=keys).exists()


def test_tasks_queued_behind_a_long_task_are_taken_back_for_another_child(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    # Short tasks first, so the adaptive depth grows past one before the long task comes.
    taskmill.enqueue_many(tasks.noop, [((), {})] * 200)
    blocking = tasks.block_until_released.enqueue(str(tmp_path))
    behind = [tasks.ledger_task.enqueue(f"behind-{i}").id for i in range(20)]
    worker = worker_process("--concurrency", "2", "-v", "2")

    # Every one runs while the long task still holds its child.
    _assert_ran_once(wait_until, behind)
    assert state_of(blocking.id) == "running"
    assert "queued behind a long task" in worker.output()
    (tmp_path / "release").touch()
    wait_until(_is_in_state(blocking.id, "succeeded"), timeout=30)


def test_max_tasks_per_child_counts_tasks_queued_in_a_child(
    worker_process: WorkerFactory,
) -> None:
    results = [tasks.ledger_task.enqueue(f"quota-{i}").id for i in range(10)]

    worker = worker_process(
        "--burst",
        "--concurrency",
        "1",
        "--max-tasks-per-child",
        "3",
        "--pipeline-depth",
        "4",
        "--prefetch",
        "10",
        "-v",
        "3",
    )

    assert worker.wait(60) == 0
    assert all(state_of(result_id) == "succeeded" for result_id in results)
    runs_per_child = Counter(LedgerEntry.objects.values_list("pid", flat=True))
    assert sum(runs_per_child.values()) == 10
    assert max(runs_per_child.values()) <= 3, runs_per_child
    assert most_held(worker) == 3, "a child was given its whole quota at once"
