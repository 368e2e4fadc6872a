"""Tasks that misbehave with processes, memory and signals are contained by a real worker.

- A task's processes (children, grandchildren, ones that setsid() and double-fork away)
  don't outlive its attempt: on return, timeout, cancel, or a crash of the child.
- --max-memory-per-child replaces a child that kept too much memory after a task.
- A task that ignores and blocks SIGTERM and SIGINT is still ended by its timeout, a cancel
  and the worker's shutdown, each recorded as such; the worker exits on time.
"""

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskmill
from tests.chaos.scale import Figures, scaled
from tests.integration.helpers import (
    error_paths,
    is_alive,
    record,
    started_pids,
    state_of,
    summary,
)
from tests.processes import WorkerFactory
from tests.testapp import misbehaving
from tests.waiting import WaitUntil

pytestmark = pytest.mark.django_db(transaction=True)

# Leaked per call: well above what a child grows by running small tasks.
LEAK_MB = 64


def bomb_pids(gate: Path) -> list[int]:
    return [int(p.name.split("-", 1)[1]) for p in gate.glob("bomb-*")]


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """A folder the misbehaving tasks mark; any sleeper still alive at the end is killed, so a
    failed test leaves nothing behind (the worker fixture only sees its own process group)."""
    folder = tmp_path / "gate"
    folder.mkdir()
    yield folder
    for pid in bomb_pids(folder):
        if is_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def result_of(task_result_id: str) -> object:
    return record(task_result_id).return_value


# -- Processes a task starts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("then", "escape", "state", "errors"),
    [
        # Returns while its sleepers live.
        ("return", True, "succeeded", []),
        # Ignores SIGTERM past its timeout: the supervisor SIGKILLs the child's whole tree.
        ("hang", True, "failed", ["builtins.TimeoutError"]),
        # Cancelled: SIGTERM unwinds it, and the child ends its processes before exiting.
        ("sleep", True, "cancelled", ["taskmill.exceptions.TaskCancelled"]),
        # The child dies: its process group goes with it (escaping a crash isn't covered).
        ("crash", False, "failed", ["taskmill.exceptions.TaskCrashed"]),
    ],
    ids=["return", "timeout", "cancel", "crash"],
)
def test_no_process_a_task_started_outlives_its_attempt(
    worker_process: WorkerFactory,
    wait_until: WaitUntil,
    gate: Path,
    figures: Figures,
    then: str,
    escape: bool,
    state: str,
    errors: list[str],
) -> None:
    width, depth = scaled(3, 5), scaled(2, 3)
    expected = misbehaving.tree_size(width, depth)
    bomb = misbehaving.fork_bomb.using(timeout=5 if then == "hang" else None)
    result = bomb.enqueue(str(gate), width, depth, escape, then)
    worker = worker_process("--concurrency", "1")
    (child,) = wait_until(lambda: started_pids(gate), timeout=60, message="bomb started")
    pids = bomb_pids(gate)
    assert len(pids) == expected
    if then == "sleep":
        assert taskmill.cancel(result.id) is True

    wait_until(
        lambda: state_of(result.id) == state,
        timeout=60,
        message=lambda: f"attempt ended as {state}: {summary(result.id)}",
    )
    ended = time.monotonic()
    wait_until(
        lambda: not [pid for pid in pids if is_alive(pid)],
        timeout=15,
        message=lambda: f"survivors: {[pid for pid in pids if is_alive(pid)]}",
    )
    figures.update(processes=expected, cleanup_seconds=round(time.monotonic() - ended, 2))
    assert error_paths(result.id) == errors
    if then == "return":
        assert result_of(result.id) == expected
        # At least the sleepers: a double fork's middle process may not have exited yet.
        killed = re.search(r"killed (\d+) process\(es\) the task left running", worker.output())
        assert killed, worker.output()
        assert int(killed[1]) >= expected

    after = misbehaving.current_pid.enqueue()
    wait_until(lambda: state_of(after.id) == "succeeded", timeout=30, message="next task runs")
    assert worker.popen.poll() is None
    if then == "return":
        assert result_of(after.id) == child  # the same child goes on serving
    else:
        assert not is_alive(child)


# -- Memory ------------------------------------------------------------------------------------


def _run(task_result_id: str, wait_until: WaitUntil) -> int:
    wait_until(
        lambda: state_of(task_result_id) == "succeeded",
        timeout=60,
        message=lambda: f"task ran: {summary(task_result_id)}",
    )
    pid = result_of(task_result_id)
    assert isinstance(pid, int)
    return pid


def test_a_child_over_max_memory_per_child_is_replaced_after_its_task(
    worker_process: WorkerFactory, wait_until: WaitUntil, figures: Figures
) -> None:
    # Above what a fresh child holds (Django and the test app), below that plus one leak.
    worker = worker_process("--concurrency", "1", "--max-memory-per-child", "80MiB")
    first = _run(misbehaving.current_pid.enqueue().id, wait_until)
    assert _run(misbehaving.current_pid.enqueue().id, wait_until) == first  # small: kept

    leaked_in = _run(misbehaving.leak_memory.enqueue(LEAK_MB).id, wait_until)
    assert leaked_in == first
    second = _run(misbehaving.current_pid.enqueue().id, wait_until)
    assert second != first
    assert _run(misbehaving.current_pid.enqueue().id, wait_until) == second
    assert not is_alive(first)
    assert worker.popen.poll() is None
    log = wait_until(
        lambda: [line for line in worker.output().splitlines() if "child replaced" in line],
        message="replacement logged",
    )
    assert f"pid={first}" in log[0]
    assert "over --max-memory-per-child 80.0 MiB" in log[0]
    figures.update(replaced_after_mb=LEAK_MB)


def test_without_max_memory_per_child_the_leaking_child_is_kept(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    worker_process("--concurrency", "1")
    first = _run(misbehaving.leak_memory.enqueue(LEAK_MB).id, wait_until)
    assert _run(misbehaving.leak_memory.enqueue(LEAK_MB).id, wait_until) == first
    assert _run(misbehaving.current_pid.enqueue().id, wait_until) == first


# -- Signals ------------------------------------------------------------------------------------


def test_timeout_ends_a_task_that_ignores_and_blocks_sigterm(
    worker_process: WorkerFactory, wait_until: WaitUntil, gate: Path
) -> None:
    stubborn = misbehaving.ignore_stop_signals.using(timeout=1).enqueue(str(gate))
    worker = worker_process("--concurrency", "1")
    (child,) = wait_until(lambda: started_pids(gate), timeout=60)
    wait_until(
        lambda: state_of(stubborn.id) == "failed",
        timeout=30,
        message=lambda: f"timeout recorded: {summary(stubborn.id)}",
    )
    assert error_paths(stubborn.id) == ["builtins.TimeoutError"]
    assert not is_alive(child)
    after = misbehaving.current_pid.enqueue()
    wait_until(lambda: state_of(after.id) == "succeeded", timeout=30, message="next task runs")
    assert worker.popen.poll() is None


def test_cancel_ends_a_task_that_ignores_and_blocks_sigterm(
    worker_process: WorkerFactory, wait_until: WaitUntil, gate: Path
) -> None:
    stubborn = misbehaving.ignore_stop_signals.enqueue(str(gate))
    worker_process("--concurrency", "1")
    (child,) = wait_until(lambda: started_pids(gate), timeout=60)
    wait_until(lambda: state_of(stubborn.id) == "running", timeout=10)
    assert taskmill.cancel(stubborn.id) is True
    wait_until(
        lambda: state_of(stubborn.id) == "cancelled",
        timeout=30,
        message=lambda: f"cancel recorded: {summary(stubborn.id)}",
    )
    assert error_paths(stubborn.id) == ["taskmill.exceptions.TaskCancelled"]
    assert not is_alive(child)


def test_shutdown_hands_back_a_task_that_ignores_and_blocks_sigterm(
    worker_process: WorkerFactory, wait_until: WaitUntil, gate: Path, figures: Figures
) -> None:
    grace = 1.0
    stubborn = misbehaving.ignore_stop_signals.enqueue(str(gate))
    worker = worker_process("--concurrency", "1", "--grace", str(grace))
    (child,) = wait_until(lambda: started_pids(gate), timeout=60)
    wait_until(lambda: state_of(stubborn.id) == "running", timeout=10)
    asked = time.monotonic()
    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0
    figures.update(grace=grace, exit_seconds=round(time.monotonic() - asked, 2))
    assert not is_alive(child)
    handed_back = record(stubborn.id)
    assert handed_back.state == "ready", summary(stubborn.id)
    assert handed_back.errors == []


def test_the_task_after_one_that_ignored_sigterm_is_stopped_by_sigterm(
    worker_process: WorkerFactory, wait_until: WaitUntil, gate: Path
) -> None:
    stubborn = misbehaving.ignore_stop_signals.enqueue(str(gate), 0.2)
    worker_process("--concurrency", "1")
    child = _run(stubborn.id, wait_until)
    sleeper = misbehaving.sleep_until_stopped.enqueue(str(gate))
    wait_until(lambda: (gate / f"sleeping-{child}").exists(), timeout=30, message="same child")
    assert taskmill.cancel(sleeper.id) is True
    wait_until(lambda: state_of(sleeper.id) == "cancelled", timeout=30)
    # Its finally block ran: SIGTERM reached it, rather than the SIGKILL after the grace.
    assert (gate / f"unwound-{child}").exists()
