"""enqueue() planned once per task object: the rows and results it writes are those of the
general path (enqueue_many), column by column; errors, registration and settings still count."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.tasks import TaskResult, default_task_backend
from django.tasks.exceptions import InvalidTask
from django.test import override_settings
from django.utils import timezone

import taskmill
from taskmill.enqueue_plans import can_plan, find_plan
from taskmill.exceptions import ArgumentsTooLarge
from taskmill.models import TaskRecord
from taskmill.queue.prepared import VerbatimJSON
from taskmill.task import TaskmillTask
from tests.testapp import tasks
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db

type Call = tuple[TaskmillTask[..., Any], tuple[object, ...], dict[str, object]]

CALLS: dict[str, Call] = {
    "no arguments": (tasks.noop, (), {}),
    "positional": (tasks.add, (2, 3), {}),
    "nested json": (
        tasks.echo,
        (1, (2, [3.5, None, 1e16, -0.0])),
        {"flag": True, "data": {"a": ["b", {"c": "ünï ✓"}]}},
    ),
    "options": (tasks.configured, (7,), {}),
    "queue and priority": (tasks.build_report, (42,), {}),
    "using": (tasks.noop.using(priority=-20, queue_name="low", max_attempts=4), (), {}),
    "run_after": (
        tasks.noop.using(run_after=datetime(2031, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)),
        (),
        {},
    ),
    "async task": (tasks.async_add, (1, 2), {}),
    "context task": (tasks.attempt_number, (), {}),
}

NOW = datetime(2030, 6, 7, 8, 9, 10, 123456, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set what timezone.now() returns, for every caller."""

    def set_now(when: datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: when)

    set_now(NOW)
    return set_now


def raw_row(result_id: str) -> dict[str, Any]:
    """The row as the database driver gives it back: no field converters in between."""
    table = connection.ops.quote_name(TaskRecord._meta.db_table)
    id_param = TaskRecord._meta.get_field("id").get_db_prep_value(
        TaskRecord._meta.get_field("id").to_python(result_id), connection
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [id_param])  # noqa: S608 - quoted name
        names = [column[0] for column in cursor.description]
        row = cursor.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def general_path(
    task: TaskmillTask[..., Any], args: tuple[object, ...], kwargs: dict[str, object]
) -> TaskResult[..., Any]:
    [result] = taskmill.enqueue_many(task, [(args, kwargs)])
    return result


def assert_same_result(planned: TaskResult[..., Any], general: TaskResult[..., Any]) -> None:
    for name in (
        "task",
        "status",
        "enqueued_at",
        "started_at",
        "finished_at",
        "last_attempted_at",
        "args",
        "kwargs",
        "backend",
        "errors",
        "worker_ids",
    ):
        assert getattr(planned, name) == getattr(general, name), name
    assert planned.task.run_after == general.task.run_after
    assert type(planned.task.priority) is type(general.task.priority)


@pytest.mark.parametrize(("task", "args", "kwargs"), CALLS.values(), ids=CALLS.keys())
def test_enqueue__rows_equal_the_general_paths_column_by_column(
    clock: Callable[[datetime], None],
    task: TaskmillTask[..., Any],
    args: tuple[object, ...],
    kwargs: dict[str, object],
) -> None:
    first = task.enqueue(*args, **kwargs)  # plans
    again = task.enqueue(*args, **kwargs)  # uses the plan
    general = general_path(task, args, kwargs)

    assert find_plan(task.get_backend(), task) is not None
    expected = raw_row(general.id)
    for result in (first, again):
        row = raw_row(result.id)
        assert row.pop("id") != expected["id"]
        assert row == {name: value for name, value in expected.items() if name != "id"}
        assert_same_result(result, general)
        assert result == default_task_backend.get_result(result.id)


def test_enqueue__rows_equal_the_general_paths_without_time_zones(
    clock: Callable[[datetime], None],
) -> None:
    clock(NOW.replace(tzinfo=None))
    with override_settings(USE_TZ=False):
        first = tasks.add.enqueue(1, 2)
        again = tasks.add.enqueue(1, 2)
        general = general_path(tasks.add, (1, 2), {})

        expected = raw_row(general.id)
        del expected["id"]
        for result in (first, again):
            row = raw_row(result.id)
            del row["id"]
            assert row == expected
            assert_same_result(result, general)


def test_enqueue__a_planned_task_writes_each_calls_own_time(
    clock: Callable[[datetime], None],
) -> None:
    tasks.add.enqueue(0, 0)
    clock(NOW + timedelta(seconds=5))

    result = tasks.add.enqueue(1, 2)

    record = TaskRecord.objects.get(id=result.id)
    assert (
        result.enqueued_at == record.enqueued_at == record.run_after == NOW + timedelta(seconds=5)
    )
    assert (record.args, record.kwargs) == ([1, 2], {})


def test_enqueue__run_after_equal_to_the_enqueue_time_shows_as_none_for_that_call_only(
    clock: Callable[[datetime], None],
) -> None:
    # The general path shows run_after only where it differs from the enqueue time.
    task = tasks.noop.using(run_after=NOW)
    at_run_after = task.enqueue()
    general_at_run_after = general_path(task, (), {})
    clock(NOW - timedelta(seconds=1))

    earlier = task.enqueue()
    general_earlier = general_path(task, (), {})

    assert at_run_after.task.run_after is None
    assert_same_result(at_run_after, general_at_run_after)
    assert earlier.task.run_after == NOW
    assert_same_result(earlier, general_earlier)


def test_enqueue__a_planned_task_still_refuses_a_bad_argument_naming_it() -> None:
    tasks.echo.enqueue(1)

    with pytest.raises(TypeError, match=r"kwargs\['when'\]"):
        tasks.echo.enqueue(1, when=timezone.now())
    with pytest.raises(TypeError, match="NUL"):
        tasks.echo.enqueue("a\x00b")

    assert TaskRecord.objects.count() == 1


def test_enqueue__a_planned_task_still_checks_the_argument_limit() -> None:
    tasks.echo.enqueue("small")

    with (
        override_settings(TASKMILL={"MAX_ARGUMENT_BYTES": 1024}),
        pytest.raises(ArgumentsTooLarge, match=r"take 1106 bytes as JSON, over"),
    ):
        tasks.echo.enqueue("x" * 1100)

    assert TaskRecord.objects.count() == 1


def test_enqueue__a_planned_task_is_refused_once_its_path_names_another_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planned = tasks.noop
    planned.enqueue()
    assert find_plan(planned.get_backend(), planned) is not None

    monkeypatch.setattr(tasks, "noop", tasks.add)
    with pytest.raises(InvalidTask, match="must be bound at module level"):
        planned.enqueue()

    assert TaskRecord.objects.count() == 1


def test_enqueue__a_settings_change_forgets_every_plan() -> None:
    tasks.noop.enqueue()
    assert find_plan(tasks.noop.get_backend(), tasks.noop) is not None

    with override_settings(TASKMILL={"MAX_ARGUMENT_BYTES": 2048}):
        assert find_plan(tasks.noop.get_backend(), tasks.noop) is None
        tasks.noop.enqueue()

    assert TaskRecord.objects.count() == 2


def test_enqueue__a_queue_removed_by_settings_is_refused_for_a_planned_task() -> None:
    task = tasks.noop.using(queue_name="low")
    task.enqueue()
    tasks_setting = {
        "default": {"BACKEND": "taskmill.backend.DatabaseBackend", "QUEUES": ["default"]}
    }

    with override_settings(TASKS=tasks_setting), pytest.raises(InvalidTask, match="'low'"):
        task.enqueue()


@pytest.mark.parametrize(
    "task",
    [
        tasks.unique_noop,
        tasks.noop.using(depends_on=["0190a5e0-0000-7000-8000-000000000000"]),
    ],
    ids=["unique", "depends_on"],
)
def test_can_plan__refuses_tasks_the_general_path_must_insert(
    task: TaskmillTask[..., Any],
) -> None:
    assert not can_plan(task)
    assert can_plan(tasks.noop)
    assert not can_plan(object())


def test_can_plan__refuses_a_task_bound_to_an_object() -> None:
    article = Article.objects.create(title="planned")

    assert not can_plan(tasks.title_of.using(for_object=article))


def test_verbatim_json__encodes_text_as_itself_and_refuses_anything_else() -> None:
    assert VerbatimJSON().encode('{"a": [1]}') == '{"a": [1]}'
    with pytest.raises(TypeError, match="JSON text"):
        VerbatimJSON().encode({"a": 1})


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db(transaction=True)
def test_enqueue__a_planned_task_notifies_on_commit_only() -> None:
    listener = connection.get_new_connection(connection.get_connection_params())
    listener.autocommit = True
    listener.execute("LISTEN taskmill")
    try:
        tasks.noop.enqueue()
        tasks.noop.enqueue()
        with contextlib.suppress(RuntimeError), transaction.atomic():
            tasks.build_report.enqueue(1)
            raise RuntimeError("roll back")
        # Notifications arrive in commit order: one from the rolled-back enqueue would come
        # before this one's.
        tasks.noop.using(queue_name="low").enqueue()

        payloads = [note.payload for note in listener.notifies(timeout=10, stop_after=3)]
    finally:
        listener.close()

    assert payloads == ["default", "default", "low"]
    assert TaskRecord.objects.filter(queue_name="reports").count() == 0


@pytest.mark.only_on("postgresql")
@pytest.mark.parametrize("deferred", [False, True])
def test_prepared_insert__server_side_binding_keeps_the_one_statement_form(
    monkeypatch: pytest.MonkeyPatch, deferred: bool
) -> None:
    from taskmill.queue.postgres import PostgresQueue

    queue = PostgresQueue("default")
    insert, _ = queue._insert_columns
    options = {**connection.settings_dict["OPTIONS"], "server_side_binding": True}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)

    sql, wake_fields = queue._prepared_insert_sql(insert, deferred=deferred)

    assert sql.startswith("WITH inserted AS (INSERT")
    assert ";" not in sql
    assert wake_fields == ()
