"""The worker run inside the test process: call_command(... "--burst"), the solo pool, and
taskmill.testing helpers."""

import logging
import sqlite3
from collections.abc import Callable

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.tasks import TaskResultStatus
from django.test import override_settings

import taskmill
from taskmill.exceptions import DatabaseUnavailable
from taskmill.models import LogChunk, TaskRecord, Worker
from taskmill.queue import get_queue
from taskmill.queue.lease import ClaimRequest
from taskmill.queue.waiter import Waiter
from taskmill.testing import assert_enqueued, run_until_empty
from taskmill.worker import startup, supervisor
from taskmill.worker.setup import build_options
from tests.integration.helpers import captured
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_call_command_burst_solo_runs_due_tasks_and_returns() -> None:
    added = tasks.add.enqueue(2, 40)
    failed = tasks.fail_value_error.enqueue()
    call_command("taskmill", "worker", "--burst", "--pool", "solo", "-v", "0")
    added.refresh()
    failed.refresh()
    assert added.status == TaskResultStatus.SUCCESSFUL
    assert added.return_value == 42
    assert failed.status == TaskResultStatus.FAILED


def test_run_until_empty_counts_attempts_including_retries() -> None:
    tasks.noop.enqueue()
    flaky = tasks.fail_twice_then_succeed.enqueue()
    assert run_until_empty() == 4
    flaky.refresh()
    assert flaky.return_value == 3
    assert run_until_empty() == 0


def test_run_until_empty_serves_only_the_queues_asked() -> None:
    report = tasks.build_report.enqueue(1)
    assert run_until_empty(queues=["default"]) == 0
    report.refresh()
    assert report.status == TaskResultStatus.READY
    assert run_until_empty(queues=["reports"]) == 1


def test_assert_enqueued_matches_calls_and_explains_a_miss() -> None:
    tasks.add.enqueue(1, 2)
    tasks.add.enqueue(3, 4)
    (found,) = assert_enqueued(tasks.add, args=[3, 4])
    assert found.args == [3, 4]
    assert len(assert_enqueued(tasks.add, count=2)) == 2
    with pytest.raises(AssertionError, match=r"enqueued 0 time\(s\) with args=\[9, 9\]"):
        assert_enqueued(tasks.add, args=[9, 9])


def test_cancel_accepts_a_task_result() -> None:
    queued = tasks.noop.enqueue()
    assert taskmill.cancel(queued) is True
    queued.refresh()
    assert queued.status == TaskResultStatus.FAILED
    assert queued.errors[-1].exception_class_path == "taskmill.exceptions.TaskCancelled"


def test_cancel_command_reports_each_id(capsys: pytest.CaptureFixture[str]) -> None:
    queued = tasks.noop.enqueue()
    call_command("taskmill", "cancel", queued.id)
    call_command("taskmill", "cancel", queued.id)
    output = capsys.readouterr().out.splitlines()
    assert output == [f"{queued.id}: cancel requested", f"{queued.id}: already finished"]
    with pytest.raises(CommandError, match="No task result with id"):
        call_command("taskmill", "cancel", "01a20000-0000-7000-8000-000000000000")


def _options(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "backend_alias": "default",
        "queues": None,
        "concurrency": None,
        "max_tasks_per_child": None,
        "burst": False,
        "grace": 30.0,
        "pool": "fork",
    }
    values.update(overrides)
    return values


def test_worker_options_default_to_every_queue_of_the_backend() -> None:
    options = build_options(**_options())  # type: ignore[arg-type]  # checked values above
    assert set(options.queue_names) == {"default", "reports", "low"}
    assert options.concurrency >= 1


def test_worker_options_read_max_memory_per_child_as_bytes() -> None:
    options = build_options(**_options(max_memory_per_child="512MiB"))  # type: ignore[arg-type]  # checked values above
    assert options.max_memory_per_child == 512 * 1024**2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"queues": ["nope"]}, "unknown queue\\(s\\) nope"),
        ({"concurrency": 0}, "--concurrency must be at least 1"),
        ({"max_tasks_per_child": 0}, "--max-tasks-per-child must be at least 1"),
        ({"max_memory_per_child": "1.5G"}, "--max-memory-per-child '1.5G' isn't a size"),
        ({"grace": -1.0}, "--grace must be 0 or more"),
        ({"pipeline_depth": 0}, "--pipeline-depth must be at least 1"),
        ({"backend_alias": "missing"}, "--backend 'missing'"),
    ],
)
def test_worker_options_refuse_bad_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        build_options(**_options(**overrides))  # type: ignore[arg-type]  # deliberately wrong


def test_worker_refuses_a_backend_that_is_not_taskmill() -> None:
    immediate = {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}
    with (
        override_settings(TASKS={"default": immediate}),
        pytest.raises(CommandError, match="not Taskmill's DatabaseBackend"),
    ):
        build_options(**_options())  # type: ignore[arg-type]  # checked values above


def test_worker_command_rejects_an_empty_queue_list() -> None:
    with pytest.raises(CommandError, match="at least one queue name"):
        call_command("taskmill", "worker", "--queues", ",", "--burst", "--pool", "solo")


def test_worker_runs_tasks_when_its_wake_up_channel_cant_open(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    queue = get_queue("default")

    def refuse() -> Waiter:
        raise DatabaseUnavailable("too many connections")

    monkeypatch.setattr(queue, "open_waiter", refuse)
    result = tasks.add.enqueue(1, 1)
    with caplog.at_level(logging.WARNING, logger="taskmill.worker"):
        assert run_until_empty() == 1
    result.refresh()
    assert result.return_value == 2
    assert "no wake-up channel, polling" in caplog.text


def _claims_fail(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every claim raise a lost-connection error; return the list each call appends to."""
    calls: list[int] = []

    def fail(request: ClaimRequest) -> list[TaskRecord]:
        calls.append(1)
        raise OperationalError("server closed the connection")

    monkeypatch.setattr(get_queue("default"), "claim", fail)
    return calls


@pytest.mark.django_db(transaction=True)
def test_burst_worker_gives_up_after_repeated_database_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervisor, "RECONNECT_MIN", 0.001)
    calls = _claims_fail(monkeypatch)
    tasks.noop.enqueue()
    with pytest.raises(OperationalError, match="server closed"):
        call_command("taskmill", "worker", "--burst", "--pool", "solo", "-v", "0")
    assert len(calls) == supervisor.BURST_ERROR_LIMIT


@pytest.mark.django_db(transaction=True)
def test_a_claim_whose_answer_was_lost_is_handed_back_and_runs_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(supervisor, "RECONNECT_MIN", 0.001)
    queue = get_queue("default")
    claim = queue.claim
    lost: list[str] = []

    def claim_then_lose_the_answer(request: ClaimRequest) -> list[TaskRecord]:
        claimed = claim(request)
        if claimed and not lost:
            # Committed, but the connection died before the worker read what it took.
            lost.extend(str(record.id) for record in claimed)
            raise OperationalError("Lost connection to server during query")
        return claimed

    monkeypatch.setattr(queue, "claim", claim_then_lose_the_answer)
    result = tasks.add.enqueue(2, 3)
    with caplog.at_level(logging.WARNING, logger="taskmill.worker"):
        assert run_until_empty() == 1
    result.refresh()
    assert lost == [result.id]
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert len(result.worker_ids) == 1  # handed back unrun: the lost claim used no attempt
    assert f"task released task_id={result.id}: its claim's answer was lost" in caplog.text


def _busy_error() -> OperationalError:
    """The error Django raises when another writer holds SQLite's lock past the timeout."""
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY
    error = OperationalError("database is locked")
    error.__cause__ = locked
    return error


def _unavailable_error() -> OperationalError:
    """What a worker meets when its database restarts or fails over as it starts."""
    return OperationalError("FATAL:  the database system is shutting down")


@pytest.mark.parametrize(
    ("refusal", "logged"),
    [
        (_busy_error, "database busy at start, retrying"),
        (_unavailable_error, "database unavailable at start, retrying"),
    ],
)
def test_start_retries_a_busy_or_unavailable_database_then_runs_the_tasks(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    refusal: Callable[[], OperationalError],
    logged: str,
) -> None:
    monkeypatch.setattr(startup, "BACKOFF_MIN", 0.001)
    queue = get_queue("default")
    register = queue.register_worker
    refused: list[str] = []

    def refused_twice(worker: Worker) -> None:
        if len(refused) < 2:
            refused.append(worker.id)
            raise refusal()
        register(worker)

    monkeypatch.setattr(queue, "register_worker", refused_twice)
    tasks.noop.enqueue()
    with caplog.at_level(logging.INFO, logger="taskmill.worker"):
        assert run_until_empty() == 1
    assert len(refused) == 2
    assert caplog.text.count(logged) == 2


def test_start_gives_up_after_a_bounded_number_of_busy_tries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(startup, "BACKOFF_MIN", 0.001)
    refused: list[str] = []

    def always_busy(worker: Worker) -> None:
        refused.append(worker.id)
        raise _busy_error()

    monkeypatch.setattr(get_queue("default"), "register_worker", always_busy)
    with pytest.raises(OperationalError, match="database is locked"):
        run_until_empty()
    assert len(refused) == startup.START_TRIES


def test_solo_pool_captures_the_task_output_in_process() -> None:
    result = tasks.chatty.enqueue()
    run_until_empty()
    output = captured(result.id)
    # In-process, a subprocess writes to the worker's own stdout: only Python's is captured.
    assert output["stdout"] == "hello from stdout\nno newline at the end"
    assert output["stderr"] == "a warning on stderr\n"
    assert output["log"] == "INFO tests.testapp.tasks: an info record\n"


def test_solo_pool_stores_the_last_progress_report() -> None:
    result = tasks.count_with_progress.enqueue(10)
    run_until_empty()
    progress = TaskRecord.objects.get(id=result.id).progress
    assert progress is not None
    assert (progress["done"], progress["total"], progress["message"]) == (10, 10, "item 10")


def test_retried_attempts_keep_their_output_apart() -> None:
    result = tasks.print_and_fail_once.enqueue()
    run_until_empty()
    chunks = LogChunk.objects.filter(task__id=result.id).order_by("attempt", "seq")
    assert [(c.attempt, c.stream, c.text) for c in chunks] == [
        (1, "stdout", "attempt 1\n"),
        (2, "stdout", "attempt 2\n"),
    ]


def test_run_until_empty_in_a_transaction_raises_a_database_error_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The test's own transaction is open (pytest-django's `db`): the worker can't reconnect
    # inside it, so it must neither retry nor sleep, but hand the error to the caller.
    monkeypatch.setattr(supervisor, "RECONNECT_MIN", 60.0)  # a retry would hang the test
    calls = _claims_fail(monkeypatch)
    tasks.noop.enqueue()
    with pytest.raises(OperationalError, match="server closed"):
        run_until_empty()
    assert calls == [1]
