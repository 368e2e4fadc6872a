"""A real worker process runs tasks and records every outcome on the row."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.tasks import TaskResultStatus

from taskmill.models import TaskRecord
from tests.processes import REPO_ROOT, WorkerFactory
from tests.testapp import tasks
from tests.testapp.models import Article, LedgerEntry, SignalRecord
from tests.waiting import WaitUntil

from .helpers import error_paths, record, state_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_burst_worker_runs_due_tasks_and_exits_zero(worker_process: WorkerFactory) -> None:
    results = [tasks.add.enqueue(i, 1) for i in range(10)]
    worker = worker_process("--burst", "--concurrency", "2")
    assert worker.wait(30) == 0, worker.output()
    for index, result in enumerate(results):
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.return_value == index + 1
        assert result.started_at is not None
        assert result.finished_at is not None
        assert result.attempts == 1
        assert result.worker_ids[0].count(":") == 2


def test_failure_is_recorded_with_class_path_and_traceback(worker_process: WorkerFactory) -> None:
    result = tasks.fail_value_error.enqueue("bad input")
    assert worker_process("--burst").wait(30) == 0
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    (error,) = result.errors
    assert error.exception_class_path == "builtins.ValueError"
    assert "bad input" in error.traceback
    assert "fail_value_error" in error.traceback


def test_retries_keep_every_attempts_error(worker_process: WorkerFactory) -> None:
    result = tasks.fail_twice_then_succeed.enqueue()
    assert worker_process("--burst").wait(30) == 0
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 3
    assert result.attempts == 3
    assert [e.exception_class_path for e in result.errors] == [
        "tests.testapp.tasks.TransientError",
        "tests.testapp.tasks.TransientError",
    ]
    assert [e["attempt"] for e in record(result.id).errors] == [1, 2]


def test_retry_on_limits_which_errors_retry(worker_process: WorkerFactory) -> None:
    result = tasks.fail_permanently.enqueue()
    assert worker_process("--burst").wait(30) == 0
    assert state_of(result.id) == "failed"
    assert record(result.id).attempts == 1


def test_retry_on_given_to_using_is_honoured(worker_process: WorkerFactory) -> None:
    not_retried = tasks.fail_value_error.using(
        max_attempts=3, retry_delay=0, retry_on=(KeyError,)
    ).enqueue()
    retried = tasks.fail_value_error.using(
        max_attempts=3, retry_delay=0, retry_on=(ValueError,)
    ).enqueue()
    assert worker_process("--burst").wait(60) == 0
    assert record(not_retried.id).attempts == 1
    assert record(retried.id).attempts == 3
    assert error_paths(retried.id) == ["builtins.ValueError"] * 3


def test_raise_retry_schedules_another_attempt_after_its_delay(
    worker_process: WorkerFactory,
) -> None:
    result = tasks.raise_retry.enqueue(3600)
    assert worker_process("--burst").wait(30) == 0
    row = record(result.id)
    assert row.state == "ready"
    assert row.attempts == 1
    assert error_paths(result.id) == ["taskmill.exceptions.Retry"]
    assert row.last_attempted_at is not None
    assert (row.run_after - row.last_attempted_at).total_seconds() > 3500


def test_async_task_and_context_run(worker_process: WorkerFactory) -> None:
    added = tasks.async_add.enqueue(2, 3)
    attempt = tasks.attempt_number.enqueue()
    assert worker_process("--burst").wait(30) == 0
    added.refresh()
    attempt.refresh()
    assert added.return_value == 5
    assert attempt.return_value == 1


def test_model_argument_is_fetched_fresh_when_the_task_runs(
    worker_process: WorkerFactory,
) -> None:
    article = Article.objects.create(title="draft")
    result = tasks.title_of.enqueue(article)
    Article.objects.filter(pk=article.pk).update(title="published")
    assert worker_process("--burst").wait(30) == 0
    result.refresh()
    assert result.return_value == "published"


def test_deleted_model_argument_fails_the_task_readably(worker_process: WorkerFactory) -> None:
    article = Article.objects.create(title="gone")
    result = tasks.title_of.enqueue(article)
    article.delete()
    assert worker_process("--burst").wait(30) == 0
    assert error_paths(result.id) == ["tests.testapp.models.Article.DoesNotExist"]


def test_signals_are_sent_from_the_worker_after_recording(worker_process: WorkerFactory) -> None:
    ok = tasks.noop.enqueue()
    bad = tasks.fail_value_error.enqueue()
    worker = worker_process("--concurrency", "1", env={"TASKMILL_TEST_RECORD_SIGNALS": "1"})
    wait_until_signals = {(ok.id, "finished"), (bad.id, "finished")}

    def seen() -> bool:
        rows = set(SignalRecord.objects.values_list("result_id", "signal"))
        return wait_until_signals <= rows

    from tests.waiting import wait_until

    wait_until(seen, timeout=40, message="task_finished signals")
    rows = {(r.result_id, r.signal): r for r in SignalRecord.objects.all()}
    assert rows[ok.id, "started"].status == "RUNNING"
    assert rows[ok.id, "finished"].status == "SUCCESSFUL"
    assert rows[bad.id, "finished"].status == "FAILED"
    assert rows[ok.id, "finished"].sender == "taskmill.backend.DatabaseBackend"
    assert SignalRecord.objects.filter(result_id=ok.id, signal="finished").count() == 1
    worker.stop()


def test_row_naming_a_non_task_callable_fails_and_the_worker_goes_on(
    worker_process: WorkerFactory,
) -> None:
    bad = tasks.noop.enqueue()
    TaskRecord.objects.filter(id=bad.id).update(task_path="os.system", args=["touch /tmp/x"])
    missing = tasks.noop.enqueue()
    TaskRecord.objects.filter(id=missing.id).update(task_path="tests.testapp.tasks.gone")
    plain = tasks.noop.enqueue()
    TaskRecord.objects.filter(id=plain.id).update(task_path="tests.testapp.tasks.not_a_task")
    good = tasks.add.enqueue(1, 1)
    assert worker_process("--burst").wait(30) == 0
    for result_id in (bad.id, missing.id, plain.id):
        assert state_of(result_id) == "failed"
        assert error_paths(result_id) == ["taskmill.exceptions.TaskNotRegistered"]
    assert state_of(good.id) == "succeeded"


def test_priority_orders_claims(worker_process: WorkerFactory) -> None:
    low = [tasks.ledger_task.using(priority=-10).enqueue(f"low-{i}") for i in range(3)]
    high = [tasks.ledger_task.using(priority=50).enqueue(f"high-{i}") for i in range(3)]
    assert worker_process("--burst", "--concurrency", "1").wait(30) == 0
    order = list(LedgerEntry.objects.order_by("id").values_list("key", flat=True))
    assert order[:3] == [f"high-{i}" for i in range(3)]
    assert all(state_of(r.id) == "succeeded" for r in [*low, *high])


def test_future_run_after_waits_then_runs(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    later = tasks.noop.using(run_after=1.5).enqueue()
    worker_process("--concurrency", "1")
    wait_until(lambda: state_of(later.id) == "succeeded", timeout=30)
    row = record(later.id)
    assert row.started_at is not None
    assert row.started_at >= row.run_after
    lag = (row.started_at - row.run_after).total_seconds()
    assert lag < 5, f"started {lag:.2f}s after run_after"


def test_unique_enqueue_under_concurrency_makes_one_record() -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def enqueue() -> None:
        try:
            results.append(tasks.unique_noop.enqueue(7).id)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=enqueue) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1
    assert TaskRecord.objects.filter(task_path="tests.testapp.tasks.unique_noop").count() == 1


def test_worker_serves_only_its_queues(worker_process: WorkerFactory, tmp_path: Path) -> None:
    report = tasks.build_report.enqueue(1)
    plain = tasks.noop.enqueue()
    assert worker_process("--burst", "--queues", "default").wait(30) == 0
    assert state_of(plain.id) == "succeeded"
    assert state_of(report.id) == "ready"


def test_worker_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("an empty database file is the cheapest unmigrated database")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(REPO_ROOT),
        "TASKMILL_TEST_DB": "sqlite",
        "TASKMILL_TEST_DB_NAME": str(tmp_path / "empty.sqlite3"),
    }
    finished = subprocess.run(
        [sys.executable, "-m", "django", "taskmill", "worker", "--burst"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 1
    assert "are not up to date (missing migrations: 0001_initial, " in finished.stderr
    assert "manage.py migrate --database default" in finished.stderr
