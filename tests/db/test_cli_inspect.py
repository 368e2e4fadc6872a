"""manage.py taskmill status, list, show and retry: human output and --json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from taskmill.cli.show import follow_progress
from taskmill.models import TaskRecord
from taskmill.states import State
from tests.db import task_rows
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

HANDED_BACK = {
    "attempt": 1,
    "worker_id": "host:12:abc",
    "handed_back_at": "2026-12-02T19:00:00+00:00",
}


def run(*args: str) -> str:
    out = StringIO()
    call_command("taskmill", *args, stdout=out)
    return out.getvalue()


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


def test_status__aligned_queue_table_finished_counts_and_workers() -> None:
    tasks.noop.enqueue()
    tasks.build_report.enqueue(1)
    task_rows.running()
    task_rows.finished(State.FAILED)
    task_rows.worker("worker-xyz")

    lines = run("status").splitlines()

    assert lines[0].split() == ["QUEUE", "DUE", "WAITING", "BLOCKED", "RUNNING", "OLDEST", "DUE"]
    default = next(line for line in lines if line.startswith("default"))
    assert default.split()[:5] == ["default", "1", "0", "0", "1"]
    # Right-aligned numbers: every row ends its DUE column where the header does.
    due_end = lines[0].index("DUE") + 3
    assert all(line[due_end - 1].isdigit() for line in lines[1:3])
    assert any("failed 1" in line for line in lines)
    assert any(line.startswith("Workers alive: 1") for line in lines)
    assert any(line.startswith("worker-xyz") for line in lines)


def test_status__json() -> None:
    tasks.noop.enqueue()
    data = run_json("status")
    assert data["queues"][0]["queue"] == "default"
    assert data["queues"][0]["due"] == 1
    assert data["finished_last_hour"] == {"succeeded": 0, "failed": 0, "cancelled": 0}
    assert data["workers"] == []


def test_status__empty_queue_says_so() -> None:
    assert "No queued or running tasks." in run("status")


def test_list__filters_and_json() -> None:
    tasks.noop.enqueue()
    report = tasks.build_report.enqueue(7)
    failed = task_rows.finished(State.FAILED)

    assert [row["id"] for row in run_json("list", "--queue", "reports")] == [report.id]
    assert [row["id"] for row in run_json("list", "--state", "failed")] == [str(failed.id)]
    rows = run_json("list", "--task", tasks.noop.module_path, "--limit", "1")
    assert [row["id"] for row in rows] == [str(failed.id)]
    assert len(run_json("list", "--since", "10m")) == 3
    assert run_json("list", "--since", "2999-01-01T00:00") == []
    text = run("list", "--state", "ready,failed")
    assert text.splitlines()[0].split()[:4] == ["ID", "TASK", "QUEUE", "STATE"]
    assert len(text.splitlines()) == 4


def test_list__bad_state_is_a_usage_error() -> None:
    with pytest.raises(CommandError, match="unknown state bogus"):
        run("list", "--state", "bogus")


def test_show__fields_error_traceback_progress_and_dependencies() -> None:
    dependency = tasks.noop.enqueue()
    dependant = tasks.add.using(depends_on=[dependency]).enqueue(1, 2)
    record = task_rows.put(
        dependant,
        State.FAILED,
        attempts=1,
        progress={"done": 1, "total": 4, "message": "a quarter"},
        errors=[
            {
                "exception_class_path": "builtins.ValueError",
                "traceback": "Traceback (most recent call last):\n  File x\nValueError: bad\n",
                "attempt": 1,
            }
        ],
    )

    text = run("show", str(record.id))

    assert f"id              {record.id}" in text
    assert "state           failed" in text
    assert "args            [1, 2]" in text
    assert "[=======>                      ]  25% (1/4) a quarter" in text
    assert "Depends on:" in text
    assert dependency.id in text
    assert "Error on attempt 1: builtins.ValueError" in text
    assert "ValueError: bad" in text


def test_show__json_parses_with_every_field() -> None:
    result = tasks.add.enqueue(1, 2)
    data = run_json("show", result.id)
    assert data["id"] == result.id
    assert data["state"] == "ready"
    assert data["args"] == [1, 2]
    assert data["dependencies"] == []
    assert data["retry_of"] is None


def test_show__lists_attempts_a_shutdown_handed_back() -> None:
    result = tasks.noop.enqueue()
    TaskRecord.objects.filter(id=result.id).update(handed_back=[HANDED_BACK])

    text = run("show", result.id)

    assert (
        "handed back     attempt 1 by host:12:abc at 2026-12-02T19:00:00+00:00 "
        "(stopped by a shutdown; not counted)"
    ) in text
    assert run_json("show", result.id)["handed_back"] == [HANDED_BACK]


def test_show__unknown_id() -> None:
    with pytest.raises(CommandError, match="No task result with id nope"):
        run("show", "nope")


def test_show_follow__finished_task_prints_once_and_returns() -> None:
    record = task_rows.finished(State.SUCCEEDED, progress={"done": 2, "total": 2, "message": ""})
    text = run("show", str(record.id), "--follow")
    assert "succeeded  [==============================] 100% (2/2)" in text


def test_follow_progress__redraws_each_change_until_the_task_finishes() -> None:
    record = task_rows.running(progress={"done": 0, "total": 3, "message": "start"})
    steps: Iterator[dict[str, Any]] = iter(
        [
            {"progress": {"done": 1, "total": 3, "message": "one"}},
            {"progress": {"done": 1, "total": 3, "message": "one"}},
            {"progress": {"done": 3, "total": 3, "message": "done"}, "state": State.SUCCEEDED},
        ]
    )
    lines: list[str] = []

    def worker_moves_on(seconds: float) -> None:
        TaskRecord.objects.filter(id=record.id).update(**next(steps))

    final = follow_progress(record, lines.append, poll_interval=0, sleep=worker_moves_on)

    assert final.state == State.SUCCEEDED
    assert [line.split()[0] for line in lines] == ["running", "running", "succeeded"]
    assert lines[1].endswith("(1/3) one")


def test_retry__prints_old_and_new_ids_and_json() -> None:
    old = task_rows.finished(State.FAILED)
    text = run("retry", str(old.id))
    new_id = text.strip().split()[-1]
    assert TaskRecord.objects.get(id=new_id).retry_of_id == old.id

    again = run_json("retry", str(old.id))
    assert again["retried"][0]["id"] == str(old.id)
    assert again["errors"] == []


def test_retry__refuses_unfinished_and_unknown_with_clear_messages() -> None:
    ready = tasks.noop.enqueue()
    with pytest.raises(CommandError) as raised:
        run("retry", ready.id, "0190c5d4-0000-7000-8000-000000000000")
    message = str(raised.value)
    assert f"{ready.id}: Task {ready.id} is ready; only failed or cancelled" in message
    assert "0190c5d4-0000-7000-8000-000000000000: no task result with this id" in message
