"""Rows written by hand or by a careless migration: each fails alone with a readable error (or
is refused by the database itself), and the worker goes on running the good tasks around it."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import JSONField, Value
from django.tasks import default_task_backend
from django.test import Client
from django.urls import reverse

import taskmill
from taskmill.exceptions import InvalidTaskRecord
from taskmill.models import TaskRecord
from taskmill.queue import get_queue
from taskmill.queue.lease import MAX_STORED_ATTEMPTS, ClaimRequest
from tests.chaos.scale import Figures
from tests.integration.helpers import error_paths, record, state_of
from tests.processes import WorkerFactory
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

JSON_NULL = Value(None, output_field=JSONField())
INVALID = "taskmill.exceptions.InvalidTaskRecord"
NOT_REGISTERED = "taskmill.exceptions.TaskNotRegistered"


def corrupt(**changes: Any) -> str:
    """Enqueue a good task, then overwrite its row as a careless UPDATE would; return its id."""
    result = tasks.add.enqueue(1, 1)
    TaskRecord.objects.filter(id=result.id).update(**changes)
    return result.id


def write_raw(result_id: str, column: str, text: str) -> None:
    """Write text into a column with raw SQL, past the model's encoder and Python's JSON."""
    quote = connection.ops.quote_name
    table = quote(TaskRecord._meta.db_table)
    pk = TaskRecord._meta.get_field("id").get_db_prep_value(result_id, connection)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {quote(column)} = %s WHERE {quote('id')} = %s",  # noqa: S608 - quoted names only
            [text, pk],
        )


def run_between_good_tasks(
    worker_process: WorkerFactory, make_bad: list[Callable[[], str]]
) -> list[str]:
    """Enqueue a good task before and after each bad row, drain them with one worker, check
    the worker exited cleanly and every good task succeeded; return the bad rows' ids."""
    good: list[tuple[str, int]] = []
    bad: list[str] = []
    for index, make in enumerate(make_bad):
        good.append((tasks.add.enqueue(index, 1).id, index + 1))
        bad.append(make())
    good.append((tasks.add.enqueue(100, 1).id, 101))
    worker = worker_process("--burst", "--concurrency", "2")
    assert worker.wait(90) == 0, worker.output()
    assert [(state_of(i), record(i).return_value) for i, _ in good] == [
        ("succeeded", value) for _, value in good
    ]
    return bad


def assert_failed_alone(result_id: str, error_path: str, *fragments: str) -> None:
    row = record(result_id)
    assert row.state == "failed", (row.state, row.errors)
    assert error_paths(result_id)[-1] == error_path
    message = row.errors[-1]["traceback"]
    for fragment in fragments:
        assert fragment in message


def test_wrong_json_shapes_fail_alone_naming_the_column(
    worker_process: WorkerFactory, figures: Figures
) -> None:
    cases: dict[str, tuple[Callable[[], str], str]] = {
        "args as a JSON string": (
            lambda: corrupt(args="[1, 1]"),
            "args must be a JSON list, found str '[1, 1]'",
        ),
        "args as an object": (lambda: corrupt(args={"a": 1}), "args must be a JSON list"),
        "args JSON null": (lambda: corrupt(args=JSON_NULL), "args must be a JSON list"),
        "kwargs as a list": (lambda: corrupt(kwargs=[1]), "kwargs must be a JSON object"),
        "kwargs JSON null": (lambda: corrupt(kwargs=JSON_NULL), "kwargs must be a JSON object"),
        "options as a string": (
            lambda: corrupt(options="fast"),
            "options must be a JSON object, found str 'fast'",
        ),
        "options JSON null": (lambda: corrupt(options=JSON_NULL), "options must be a JSON"),
        "options of the wrong types": (
            lambda: corrupt(options={**_options(), "max_attempts": "three", "timeout": -1}),
            "options['max_attempts'] must be a whole number >= 1, found str 'three'",
        ),
        "options with a key missing": (
            lambda: corrupt(options={**_options(), "timeout": None} | {"max_attempts": None}),
            "options['max_attempts'] must be a whole number >= 1, found NoneType None",
        ),
        "errors not a list": (lambda: corrupt(errors={"oops": 1}), "errors must be a JSON list"),
        "errors JSON null": (lambda: corrupt(errors=JSON_NULL), "errors must be a JSON list"),
        "worker_ids JSON null": (
            lambda: corrupt(worker_ids=JSON_NULL),
            "worker_ids must be a JSON list of strings",
        ),
    }
    bad = run_between_good_tasks(worker_process, [make for make, _ in cases.values()])
    for (_, fragment), result_id in zip(cases.values(), bad, strict=True):
        assert_failed_alone(result_id, INVALID, "can't be run as it stands", fragment)
    figures["bad_rows"] = len(bad)


def _options() -> dict[str, Any]:
    return dict(tasks.add.stored_options())


def test_a_model_reference_to_no_model_fails_alone(worker_process: WorkerFactory) -> None:
    (bad,) = run_between_good_tasks(
        worker_process,
        [lambda: corrupt(args=[{"__taskmill_model__": "nosuchapp.model", "pk": 1}, 1])],
    )
    assert_failed_alone(bad, "builtins.LookupError", "No installed app with label 'nosuchapp'")


@pytest.mark.parametrize("text", ["[1,", "{a: 1}", "[1.]", "[NaN]", "[1] [2]"])
def test_invalid_json_text_is_refused_by_the_database_or_fails_alone(
    worker_process: WorkerFactory, figures: Figures, text: str
) -> None:
    result_id = tasks.add.enqueue(1, 1).id
    try:
        write_raw(result_id, "args", text)
    except DatabaseError:
        # PostgreSQL's jsonb and the JSON_VALID() checks Django puts on SQLite and MariaDB
        # columns refuse it: the row keeps its good arguments.
        figures["refused_by_the_database"] = text
        assert record(result_id).args == [1, 1]
        return
    # Stored anyway (MariaDB's JSON_VALID accepts `[1.]`): that row fails, nothing else does.
    figures["stored_then_failed_alone"] = text
    run_between_good_tasks(worker_process, [lambda: result_id])
    assert_failed_alone(result_id, INVALID, "args must be a JSON list, found text that is not")


def test_rows_naming_anything_but_a_registered_task_call_nothing(
    worker_process: WorkerFactory, tmp_path: Path
) -> None:
    evidence = tmp_path / "called"
    command = f"touch {evidence}"
    paths = {
        "os.system": ([command], "is not a registered Taskmill task (found builtin_function"),
        "subprocess.getoutput": ([command], "is not a registered Taskmill task (found function"),
        "builtins.exec": (
            [f"open({str(evidence)!r}, 'w')"],
            "is not a registered Taskmill task (found builtin_function",
        ),
        # The plain function behind a registered task, and a plain function.
        "tests.testapp.tasks.add.func": ([1, 1], "can't be imported"),
        "tests.testapp.tasks.not_a_task": ([], "only functions decorated with @task can run"),
        "tests.testapp.tasks": ([], "is not a registered Taskmill task (found module)"),
        "tests.testapp.tasks.gone": ([], "can't be imported"),
        "no_such_module.task": ([], "can't be imported (No module named 'no_such_module')"),
    }
    bad = run_between_good_tasks(
        worker_process,
        [
            lambda path=path, args=args: corrupt(task_path=path, args=args)  # type: ignore[misc]
            for path, (args, _) in paths.items()
        ],
    )
    for (path, (_, fragment)), result_id in zip(paths.items(), bad, strict=True):
        assert_failed_alone(result_id, NOT_REGISTERED, repr(path), fragment)
    assert not evidence.exists()


@pytest.mark.parametrize("state", ["bogus", "pending", ""])
def test_a_row_in_an_unknown_state_is_failed_saying_how_to_run_it(
    worker_process: WorkerFactory, state: str
) -> None:
    (bad,) = run_between_good_tasks(worker_process, [lambda: corrupt(state=state)])
    assert_failed_alone(
        bad,
        INVALID,
        f"state {state!r} is not a Taskmill state (blocked, ready, running",
        "a retry runs them again",
    )
    assert record(bad).finished_at is not None
    again = taskmill.retry_task(bad)
    assert worker_process("--burst").wait(60) == 0
    again.refresh()
    assert again.return_value == 2


def test_a_row_in_an_unknown_state_shows_in_the_admin_and_get_result_says_why(
    admin_client: Client,
) -> None:
    bad = corrupt(state="bogus")
    for url in (
        reverse("admin:taskmill_taskrecord_changelist"),
        reverse("admin:taskmill_taskrecord_change", args=[bad]),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert "bogus" in response.content.decode()
    with pytest.raises(InvalidTaskRecord, match="state 'bogus' is not a Taskmill state"):
        default_task_backend.get_result(bad)


def test_priorities_out_of_range_fail_alone_and_absurd_attempt_counts_still_run(
    worker_process: WorkerFactory,
) -> None:
    extremes = [
        lambda: corrupt(priority=32767),
        lambda: corrupt(priority=-32768),
        lambda: corrupt(attempts=1_000_000),
    ]
    too_high, too_low, many_attempts = run_between_good_tasks(worker_process, extremes)
    for result_id in (too_high, too_low):
        assert_failed_alone(
            result_id,
            "django.tasks.exceptions.InvalidTask",
            "priority must be a whole number between -100 and 100",
        )
    assert state_of(many_attempts) == "succeeded"
    assert record(many_attempts).attempts == 1_000_001


def test_a_running_row_without_a_lease_is_rescued(worker_process: WorkerFactory) -> None:
    (bad,) = run_between_good_tasks(
        worker_process,
        [lambda: corrupt(state="running", attempts=1, lease_owner=None, lease_expires_at=None)],
    )
    assert_failed_alone(bad, "taskmill.exceptions.WorkerLost", "stopped renewing its lease")


def test_task_exhausting_memory_fails_alone(worker_process: WorkerFactory) -> None:
    greedy = tasks.exhaust_memory.enqueue()
    after = tasks.add.enqueue(3, 4)
    assert worker_process("--burst", "--concurrency", "1").wait(60) == 0
    assert error_paths(greedy.id) == ["builtins.MemoryError"]
    assert state_of(after.id) == "succeeded"
    assert record(after.id).return_value == 7


def test_an_attempt_count_at_the_column_maximum_is_left_alone_and_the_others_run() -> None:
    stuck = corrupt(attempts=MAX_STORED_ATTEMPTS)
    good = tasks.add.enqueue(2, 2)
    request = ClaimRequest(worker_id="test", queue_names=("default",), limit=10, lease_seconds=30)
    # The claim's attempts + 1 would overflow PostgreSQL's integer and fail every claim.
    claimed = get_queue("default").claim(request)
    assert [str(row.id) for row in claimed] == [good.id]
    assert state_of(stuck) == "ready"
    TaskRecord.objects.filter(id=stuck).update(attempts=0)
    assert [str(row.id) for row in get_queue("default").claim(request)] == [stuck]
