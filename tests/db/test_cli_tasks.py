"""`manage.py taskmill logs` and `progress`: lines with time and stream, following, errors."""

from __future__ import annotations

import json
import re
import threading
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from taskmill.output import Progress
from taskmill.presentation import progress_bar
from taskmill.states import State
from tests.db.rows import set_state, store_progress, write_chunk
from tests.testapp import tasks
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  "


def taskmill(*args: str) -> list[str]:
    out = StringIO()
    call_command("taskmill", *args, stdout=out)
    return out.getvalue().splitlines()


def test_logs__prints_lines_with_time_stream_and_attempt_headings_then_the_state() -> None:
    result = tasks.noop.enqueue()
    write_chunk(result, "hello\n")
    write_chunk(result, "oops\n", stream="stderr")
    write_chunk(result, "INFO app: rows\n", stream="log")
    write_chunk(result, "again\n", attempt=2)
    write_chunk(result, "output truncated: cap reached\n", stream="marker", attempt=2)
    set_state(result, State.FAILED, attempts=2)

    lines = taskmill("logs", result.id)

    patterns = [
        f"{STAMP}hello",
        rf"{STAMP}\[stderr\] oops",
        rf"{STAMP}\[log\] INFO app: rows",
        "--- attempt 2 ---",
        f"{STAMP}again",
        rf"{STAMP}\[marker\] output truncated: cap reached",
        f"task {result.id} failed \\(attempts: 2\\)",
    ]
    assert len(lines) == len(patterns), lines
    for line, pattern in zip(lines, patterns, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)


def test_logs__json_prints_one_object_per_line_and_nothing_else() -> None:
    result = tasks.noop.enqueue()
    write_chunk(result, "hello\n", stream="stderr")
    store_progress(result, 1, 2)

    (line,) = taskmill("logs", result.id, "--json")

    assert json.loads(line) | {"time": None} == {
        "time": None,
        "stream": "stderr",
        "attempt": 1,
        "text": "hello",
    }


def test_logs__shows_progress_after_the_state() -> None:
    result = tasks.noop.enqueue()
    set_state(result, State.RUNNING, attempts=1)
    store_progress(result, 50, 100, "half way")

    assert taskmill("logs", result.id)[-2:] == [
        f"task {result.id} running (attempts: 1)",
        "[==============>               ]  50% (50/100) half way",
    ]


@pytest.mark.parametrize("unknown", [str(uuid.uuid4()), "nope"])
@pytest.mark.parametrize("subcommand", ["logs", "progress"])
def test_unknown_id__command_error_names_it(subcommand: str, unknown: str) -> None:
    with pytest.raises(CommandError, match=f"No task result with id {unknown}."):
        taskmill(subcommand, unknown)


@pytest.mark.django_db(transaction=True)
def test_logs_follow__prints_lines_and_progress_until_the_task_ends() -> None:
    result = tasks.noop.enqueue()
    set_state(result, State.RUNNING, attempts=1)
    out = StringIO()

    def worker() -> None:
        try:
            write_chunk(result, "step 1\n")
            store_progress(result, 1, 4, "rows")
            wait_until(lambda: "step 1" in out.getvalue() and "rows" in out.getvalue())
            write_chunk(result, "step 2\n")
            store_progress(result, 4, 4, "rows")
            set_state(result, State.SUCCEEDED)
        finally:
            connection.close()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    call_command("taskmill", "logs", result.id, "--follow", "--poll-interval", "0.02", stdout=out)
    thread.join(timeout=10)

    lines = out.getvalue().splitlines()
    assert [line[25:] for line in lines if re.match(STAMP, line)] == ["step 1", "step 2"]
    assert "[=======>                      ]  25% (1/4) rows" in lines
    # The last progress is shown once: while following, or else after the final state.
    assert lines.count("[==============================] 100% (4/4) rows") == 1
    assert f"task {result.id} succeeded (attempts: 1)" in lines[-2:]


def test_progress__prints_state_and_progress_of_each_task() -> None:
    reported, silent = tasks.noop.enqueue(), tasks.noop.enqueue()
    store_progress(reported, 3, None, "files")

    assert taskmill("progress", reported.id, silent.id) == [
        f"{reported.id}: ready 3 done files",
        f"{silent.id}: ready no progress reported",
    ]


@pytest.mark.parametrize(
    ("done", "total", "text"),
    [
        (0, 10, "[                              ]   0% (0/10)"),
        (1, 3, "[=========>                    ]  33% (1/3)"),
        (10, 10, "[==============================] 100% (10/10)"),
        (2.5, None, "2.5 done"),
    ],
)
def test_progress_bar__of_a_progress(done: float, total: float | None, text: str) -> None:
    progress = Progress(done=done, total=total, message="", updated_at=timezone.now())

    assert progress_bar(progress) == text


@pytest.mark.django_db(transaction=True)
def test_logs_follow__progress_printed_while_following_is_not_repeated_at_the_end() -> None:
    result = tasks.noop.enqueue()
    set_state(result, State.RUNNING, attempts=1)
    store_progress(result, 2, 2, "all")
    out = StringIO()
    bar = "[==============================] 100% (2/2) all"

    def worker() -> None:
        try:
            wait_until(lambda: bar in out.getvalue(), message=lambda: out.getvalue())
            set_state(result, State.SUCCEEDED)
        finally:
            connection.close()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    call_command("taskmill", "logs", result.id, "-f", "--poll-interval", "0.02", stdout=out)
    thread.join(timeout=10)

    assert out.getvalue().splitlines() == [bar, f"task {result.id} succeeded (attempts: 1)"]
