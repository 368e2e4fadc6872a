"""`taskmill show --follow` against a task a real worker runs: the bar moves, then it stops."""

import threading
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.waiting import WaitUntil

from .helpers import started_pids

pytestmark = pytest.mark.django_db(transaction=True)


def test_show_follow__redraws_progress_until_the_task_finishes(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    result = tasks.count_with_progress.enqueue(10, str(tmp_path))
    worker_process("--concurrency", "1")
    wait_until(lambda: started_pids(tmp_path), timeout=30, message="the task half-way")
    out = StringIO()

    def release_once_half_way_is_shown() -> None:
        wait_until(lambda: "(5/10)" in out.getvalue(), timeout=30, message="50% followed")
        (tmp_path / "release").touch()

    releaser = threading.Thread(target=release_once_half_way_is_shown)
    releaser.start()
    call_command("taskmill", "show", result.id, "--follow", "--poll-interval", "0.05", stdout=out)
    releaser.join(timeout=30)

    followed = out.getvalue().split("\nid ")[0].splitlines()
    assert "running  [==============>               ]  50% (5/10) item 5" in followed
    assert followed[-1] == "succeeded  [==============================] 100% (10/10) item 10"
    assert "\nstate           succeeded\n" in out.getvalue()
