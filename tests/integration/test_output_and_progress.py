"""A running task's output and progress, captured by a real worker, readable while it runs."""

import json
from pathlib import Path

import pytest

import taskmill
from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.waiting import WaitUntil

from .helpers import captured, error_paths, record, started_pids, state_of

pytestmark = pytest.mark.django_db(transaction=True)

CAP = 64 * 1024


def test_stdout_stderr_logging_and_subprocess_output_are_captured(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    result = tasks.chatty.enqueue()
    worker_process("--concurrency", "1")

    wait_until(lambda: state_of(result.id) == "succeeded", timeout=30, message="chatty ran")
    output = captured(result.id)
    assert output["stdout"] == ("hello from stdout\nfrom a subprocess\nno newline at the end")
    assert output["stderr"] == "a warning on stderr\n"
    # At the default level, INFO: the debug record is left out.
    assert output["log"] == "INFO tests.testapp.tasks: an info record\n"


def test_output_is_readable_while_the_task_runs(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    result = tasks.chatty.enqueue(str(tmp_path))
    worker_process("--concurrency", "1")

    wait_until(lambda: started_pids(tmp_path), timeout=30, message="chatty waiting")
    wait_until(
        lambda: "hello from stdout" in captured(result.id).get("stdout", ""),
        timeout=10,
        message=lambda: f"output stored while running: {captured(result.id)}",
    )
    assert state_of(result.id) == "running"
    (tmp_path / "release").touch()
    wait_until(lambda: state_of(result.id) == "succeeded", timeout=30)


def test_the_task_log_level_decides_which_records_are_kept(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    result = tasks.chatty_debug.enqueue()
    worker_process("--concurrency", "1")

    wait_until(lambda: state_of(result.id) == "succeeded", timeout=30)
    assert captured(result.id)["log"] == (
        "DEBUG tests.testapp.tasks: a debug record, captured at DEBUG\n"
    )


def test_a_burst_far_over_the_cap_is_truncated_without_stalling_anything(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    flood = tasks.flood.enqueue(50)
    neighbour = tasks.add.enqueue(1, 2)
    worker_process(
        "--concurrency", "2", env={"TASKMILL_TEST_SETTINGS": json.dumps({"LOG_CAP_BYTES": CAP})}
    )

    wait_until(lambda: state_of(neighbour.id) == "succeeded", timeout=30)
    wait_until(lambda: state_of(flood.id) == "succeeded", timeout=60, message="burst written")
    output = captured(flood.id)
    assert len(output["stdout"]) == CAP
    dropped = 50 * 1024 * 1024 - CAP
    assert output["marker"] == (
        f"output truncated: the log cap of {CAP} bytes was reached "
        f"(TASKMILL['LOG_CAP_BYTES'])\n{dropped} more bytes were dropped\n"
    )


def test_output_written_before_a_timeout_kill_is_kept(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    result = tasks.print_then_hang.enqueue(str(tmp_path))
    worker_process("--concurrency", "1")

    wait_until(lambda: state_of(result.id) == "failed", timeout=30, message="timed out")
    assert error_paths(result.id) == ["builtins.TimeoutError"]
    assert captured(result.id)["stdout"] == "written before the kill\n"


def test_progress_is_stored_while_running_and_its_last_report_at_the_end(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    result = tasks.count_with_progress.enqueue(1000, str(tmp_path))
    worker_process("--concurrency", "1")

    # Reports are rate-limited, but the one made just before the task waits still arrives.
    wait_until(
        lambda: (record(result.id).progress or {}).get("done") == 500,
        timeout=30,
        message=lambda: f"progress half-way: {record(result.id).progress}",
    )
    progress = record(result.id).progress
    assert progress is not None
    assert (progress["total"], progress["message"]) == (1000, "item 500")
    (tmp_path / "release").touch()

    wait_until(lambda: state_of(result.id) == "succeeded", timeout=30)
    final = record(result.id).progress
    assert final is not None
    assert (final["done"], final["total"], final["message"]) == (1000, 1000, "item 1000")
    assert captured(result.id)["log"] == (
        "INFO tests.testapp.tasks.count_with_progress: counted 1000 items\n"
    )


def test_a_task_checking_is_cancelled_stops_by_itself_and_is_recorded_cancelled(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    result = tasks.stop_when_cancelled.enqueue(str(tmp_path))
    worker_process("--concurrency", "1")
    wait_until(lambda: started_pids(tmp_path), timeout=30, message="task started")

    assert taskmill.cancel(result.id) is True

    wait_until(lambda: state_of(result.id) == "cancelled", timeout=30, message="cancelled")
    assert error_paths(result.id) == ["taskmill.exceptions.TaskCancelled"]
    assert "the task saw it and stopped" in record(result.id).errors[0]["traceback"]
    assert "stopped cleanly after" in captured(result.id)["stdout"]
