"""Reading what a real worker captured: taskmill.logs (following), progress, the CLI."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

import taskmill
from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.waiting import WaitUntil

from .helpers import state_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_following_a_running_task_yields_its_lines_live_and_ends_with_it(
    worker_process: WorkerFactory, tmp_path: Path
) -> None:
    result = tasks.chatty.enqueue(str(tmp_path))
    worker_process("--concurrency", "1")
    follower = taskmill.logs(result, follow=True, poll_interval=0.05, timeout=60)

    seen = []
    for line in follower:
        seen.append(line)
        if line.text == "from a subprocess":
            break
    # The task is still waiting at its gate: the lines came while it ran.
    assert state_of(result.id) == "running"
    (tmp_path / "release").touch()
    seen.extend(follower)

    by_stream: dict[str, list[str]] = {}
    for line in seen:
        by_stream.setdefault(line.stream, []).append(line.text)
    assert by_stream == {
        "stdout": ["hello from stdout", "from a subprocess", "no newline at the end"],
        "stderr": ["a warning on stderr"],
        "log": ["INFO tests.testapp.tasks: an info record"],
    }
    assert state_of(result.id) == "succeeded"
    assert taskmill.logs(result) == seen


def test_progress_and_the_cli_while_a_task_runs(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    result = tasks.count_with_progress.enqueue(1000, str(tmp_path))
    worker_process("--concurrency", "1")

    def half_way() -> bool:
        progress = taskmill.progress(result)
        return progress is not None and progress.done == 500

    wait_until(half_way, timeout=30, message=lambda: f"progress: {taskmill.progress(result)}")
    progress = taskmill.progress(result)
    assert progress is not None
    assert (progress.percent, progress.message) == (50.0, "item 500")
    (tmp_path / "release").touch()

    out = StringIO()
    call_command("taskmill", "logs", result.id, "--follow", "--poll-interval", "0.05", stdout=out)

    lines = out.getvalue().splitlines()
    log = "[log] INFO tests.testapp.tasks.count_with_progress: counted 1000 items"
    assert any(line.endswith(log) for line in lines)
    assert lines.count("[==============================] 100% (1000/1000) item 1000") == 1
    assert f"task {result.id} succeeded (attempts: 1)" in lines[-2:]
