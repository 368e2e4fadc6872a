"""TaskmillTask and @task: options, their validation and normalisation, using(), pickling and
resolving a stored path. No database: these all happen at import and decoration time."""

from __future__ import annotations

import functools
import logging
import pickle
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import django
import pytest
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.exceptions import InvalidTask
from django.utils import timezone

from taskmill import task
from taskmill.exceptions import InvalidTaskOptions, TaskNotRegistered
from taskmill.retry import DEFAULT_RETRY_MAX_DELAY
from taskmill.task import OPTION_NAMES, TaskmillTask, absolute_run_after, resolve_task
from tests.testapp import tasks
from tests.testapp.models import Article

# Option values of every type, right and wrong: what a caller may pass.
type Options = dict[str, Any]

NOOP = "tests.testapp.tasks.noop"


def make_result(result_id: str) -> TaskResult[..., Any]:
    return TaskResult(
        task=tasks.noop,
        id=result_id,
        status=TaskResultStatus.READY,
        enqueued_at=None,
        started_at=None,
        finished_at=None,
        last_attempted_at=None,
        args=[],
        kwargs={},
        backend="default",
        errors=[],
        worker_ids=[],
    )


# --- the decorator ----------------------------------------------------------------------------


def test_task__bare_decorator_makes_a_taskmill_task_with_default_options() -> None:
    noop = tasks.noop

    assert isinstance(noop, TaskmillTask)
    assert isinstance(noop, Task)
    assert noop.module_path == NOOP
    assert noop.priority == 0
    assert noop.queue_name == "default"
    assert noop.backend == "default"
    assert noop.run_after is None
    assert noop.max_attempts == 1
    assert noop.retry_delay is None
    assert noop.retry_max_delay == DEFAULT_RETRY_MAX_DELAY
    assert noop.retry_on == ()
    assert noop.timeout is None
    assert noop.result_ttl is None
    assert noop.unique is False
    assert noop.depends_on == ()
    assert noop.for_object is None


def test_task__django_arguments_and_taskmill_options_are_kept() -> None:
    configured = tasks.configured

    assert tasks.build_report.queue_name == "reports"
    assert tasks.build_report.priority == 10
    assert tasks.attempt_number.takes_context is True
    assert configured.max_attempts == 3
    assert configured.retry_on == (tasks.TransientError,)


def test_task__numbers_are_normalised_to_float_seconds() -> None:
    configured = tasks.configured

    assert configured.retry_delay == 0.5
    assert configured.retry_max_delay == 10.0
    assert configured.timeout == 30.0
    assert configured.result_ttl == 3600.0
    assert isinstance(configured.retry_max_delay, float)
    assert isinstance(configured.timeout, float)


def test_task__timedeltas_are_normalised_to_float_seconds() -> None:
    decorated = task(
        retry_delay=timedelta(milliseconds=1500),
        retry_max_delay=timedelta(minutes=5),
        timeout=timedelta(hours=1),
        result_ttl=timedelta(days=2),
    )(tasks.noop.func)

    assert decorated.retry_delay == 1.5
    assert decorated.retry_max_delay == 300.0
    assert decorated.timeout == 3600.0
    assert decorated.result_ttl == 172800.0


def test_task__a_single_retry_on_class_becomes_a_tuple() -> None:
    assert tasks.noop.using(retry_on=KeyError).retry_on == (KeyError,)
    assert tasks.noop.using(retry_on=[KeyError, TimeoutError]).retry_on == (KeyError, TimeoutError)


def test_task__callable_options_defined_at_module_level_are_accepted() -> None:
    with_callables = tasks.with_callables

    assert with_callables.retry_delay is tasks.delay_by_attempt
    assert with_callables.unique is tasks.key_of_first_argument


def test_task__run_after_in_the_decorator_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"run_after cannot be set in @task; use \.using"):
        task(run_after=timedelta(seconds=5))


def test_task__unknown_option_names_are_refused_listing_the_allowed_ones() -> None:
    with pytest.raises(InvalidTaskOptions) as caught:
        task(max_attempt=3, retries=2)

    message = str(caught.value)
    assert message.startswith("Unknown @task option(s) 'max_attempt', 'retries'; allowed: ")
    for name in OPTION_NAMES:
        assert name in message


def test_invalid_task_options__is_django_invalid_task() -> None:
    assert issubclass(InvalidTaskOptions, InvalidTask)


# --- option validation, the same through @task and using() -----------------------------------


def nested_retry_delay() -> Callable[[int], float]:
    def delay(attempt: int) -> float:
        return float(attempt)

    return delay


def nested_exception() -> type[Exception]:
    class LocalError(Exception):
        pass

    return LocalError


INVALID_OPTIONS: list[tuple[Options, str]] = [
    ({"max_attempts": 0}, "max_attempts=0 .* pass a whole number >= 1"),
    ({"max_attempts": -3}, "max_attempts=-3 .* pass a whole number >= 1"),
    ({"max_attempts": 2.5}, "max_attempts=2.5 .* pass a whole number >= 1"),
    ({"max_attempts": "3"}, "max_attempts='3' .* pass a whole number >= 1"),
    ({"max_attempts": True}, "max_attempts=True .* pass a whole number >= 1"),
    ({"retry_delay": -1}, r"retry_delay=-1\.0 .* pass a delay >= 0"),
    ({"retry_delay": timedelta(seconds=-2)}, r"retry_delay=-2\.0 .* pass a delay >= 0"),
    ({"retry_delay": "5s"}, "retry_delay='5s' .* pass seconds, a timedelta, or a function"),
    ({"retry_delay": lambda attempt: 1.0}, "retry_delay=<function <lambda>.* importable as"),
    ({"retry_delay": nested_retry_delay()}, "retry_delay=.*<locals>.* module level"),
    ({"retry_delay": functools.partial(tasks.delay_by_attempt)}, "retry_delay=.* module level"),
    ({"retry_delay": print}, "retry_delay=<built-in function print> .* module level"),
    ({"retry_max_delay": 0}, r"retry_max_delay=0\.0 .* pass seconds > 0 or a timedelta"),
    ({"retry_max_delay": None}, "retry_max_delay=None .* pass seconds > 0 or a timedelta"),
    ({"timeout": 0}, r"timeout=0\.0 .* pass seconds > 0, a timedelta, or None"),
    ({"timeout": timedelta(seconds=-1)}, r"timeout=-1\.0 .* pass seconds > 0"),
    ({"timeout": "1h"}, "timeout='1h' .* pass seconds > 0, a timedelta, or None"),
    ({"result_ttl": -5}, r"result_ttl=-5\.0 .* pass seconds > 0, a timedelta, or None"),
    ({"retry_on": int}, r"retry_on=\(<class 'int'>,\) .* pass exception classes"),
    ({"retry_on": "ValueError"}, "retry_on='ValueError' .* pass an exception class or a tuple"),
    ({"retry_on": (ValueError, 3)}, r"retry_on=\(<class 'ValueError'>, 3\) .* exception classes"),
    ({"retry_on": nested_exception()}, "retry_on=.*LocalError.* importable as"),
    ({"unique": 1}, "unique=1 .* pass True, False, or a function returning a key"),
    ({"unique": "yes"}, "unique='yes' .* pass True, False, or a function returning a key"),
    ({"unique": lambda *args: "key"}, "unique=<function <lambda>.* importable as"),
    ({"depends_on": [1]}, "depends_on=1 .* pass TaskResult objects or result ids"),
    ({"depends_on": 5}, "depends_on=5 .* pass TaskResult objects or result ids"),
    ({"for_object": 1}, "for_object=1 .* pass a model instance"),
    (
        {"for_object": Article(title="unsaved")},
        "for_object=<Article: unsaved> .* save the instance",
    ),
]


INVALID_IDS = [
    ",".join(f"{key}={value!r}"[:40] for key, value in options.items())
    for options, _ in INVALID_OPTIONS
]


@pytest.mark.parametrize(("options", "message"), INVALID_OPTIONS, ids=INVALID_IDS)
def test_task__invalid_option_is_refused_naming_option_task_and_fix(
    options: Options, message: str
) -> None:
    with pytest.raises(InvalidTaskOptions, match=message) as caught:
        task(**options)(tasks.noop.func)

    assert f"is not valid for task {NOOP}" in str(caught.value)


@pytest.mark.parametrize(("options", "message"), INVALID_OPTIONS, ids=INVALID_IDS)
def test_using__invalid_option_is_refused_like_the_decorator(
    options: Options, message: str
) -> None:
    with pytest.raises(InvalidTaskOptions, match=message):
        tasks.noop.using(**options)


def test_using__unknown_option_names_are_refused_listing_the_allowed_ones() -> None:
    with pytest.raises(InvalidTaskOptions) as caught:
        tasks.noop.using(max_attempt=2)

    message = str(caught.value)
    assert message.startswith(f"Unknown option(s) 'max_attempt' for {NOOP}.using(); allowed: ")
    assert "priority, queue_name, run_after, backend" in message
    assert "max_attempts" in message


# --- using() ----------------------------------------------------------------------------------


def test_using__returns_a_copy_with_the_options_and_leaves_the_task_alone() -> None:
    changed = tasks.noop.using(
        priority=5, queue_name="low", max_attempts=4, timeout=timedelta(minutes=1)
    )

    assert changed.priority == 5
    assert changed.queue_name == "low"
    assert changed.max_attempts == 4
    assert changed.timeout == 60.0
    assert changed.func is tasks.noop.func
    assert tasks.noop.priority == 0
    assert tasks.noop.max_attempts == 1
    assert tasks.noop.timeout is None


def test_using__keeps_options_from_the_decorator_that_are_not_changed() -> None:
    changed = tasks.configured.using(max_attempts=7)

    assert changed.max_attempts == 7
    assert changed.retry_on == (tasks.TransientError,)
    assert changed.timeout == 30.0


def test_using__aware_run_after_is_kept_as_given() -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

    assert tasks.noop.using(run_after=when).run_after == when


@pytest.mark.parametrize(
    "delay", [timedelta(minutes=5), 300, 300.0], ids=["timedelta", "int", "float"]
)
def test_using__run_after_delay_becomes_an_aware_datetime_from_now(
    delay: timedelta | float,
) -> None:
    before = timezone.now()
    run_after = tasks.noop.using(run_after=delay).run_after
    after = timezone.now()

    assert run_after is not None
    assert timezone.is_aware(run_after)
    assert before + timedelta(minutes=5) <= run_after <= after + timedelta(minutes=5)


def test_using__naive_run_after_is_refused_with_use_tz() -> None:
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        tasks.noop.using(run_after=datetime(2030, 1, 1, 12, 0))


@pytest.mark.parametrize("value", [True, "5", [5]], ids=repr)
def test_absolute_run_after__other_types_are_refused(value: object) -> None:
    with pytest.raises(InvalidTaskOptions, match="run_after must be an aware datetime, a timed"):
        absolute_run_after(value)  # type: ignore[arg-type]  # the mistake under test


@pytest.mark.parametrize("priority", [-100, 0, 100])
def test_using__priorities_in_range_are_accepted(priority: int) -> None:
    assert tasks.noop.using(priority=priority).priority == priority


@pytest.mark.parametrize("priority", [-101, 101, 1000, 1.5])
def test_using__priorities_out_of_range_are_refused(priority: int) -> None:
    with pytest.raises(InvalidTask, match="priority must be a whole number between -100 and 100"):
        tasks.noop.using(priority=priority)


def test_using__queue_not_in_queues_is_refused() -> None:
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid for backend"):
        tasks.noop.using(queue_name="nope")


def test_using__a_single_dependency_is_a_list_of_one() -> None:
    result = make_result("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")

    assert tasks.noop.using(depends_on=result).depends_on == (result,)
    assert tasks.noop.using(depends_on=result.id).depends_on == (result.id,)
    assert tasks.noop.using(depends_on=[result, "x"]).depends_on == (result, "x")


def test_using__depends_on_and_for_object_do_not_change_equality() -> None:
    bound = tasks.noop.using(depends_on=["some-id"], for_object=Article(pk=1, title="a"))

    assert bound == tasks.noop
    assert bound.depends_on == ("some-id",)


# --- stored options ---------------------------------------------------------------------------


def test_stored_options__numbers_and_classes_become_json() -> None:
    assert tasks.configured.stored_options() == {
        "max_attempts": 3,
        "retry_delay": 0.5,
        "retry_max_delay": 10.0,
        "retry_on": ["tests.testapp.tasks.TransientError"],
        "timeout": 30.0,
        "result_ttl": 3600.0,
        "unique": False,
        "log_level": logging.INFO,
        "on_dependency_failure": "cancel",
    }


def test_stored_options__callables_are_stored_by_import_path() -> None:
    stored = tasks.with_callables.stored_options()

    assert stored["retry_delay"] == "tests.testapp.tasks.delay_by_attempt"
    assert stored["unique"] == "tests.testapp.tasks.key_of_first_argument"


def test_stored_options__defaults() -> None:
    assert tasks.noop.stored_options() == {
        "max_attempts": 1,
        "retry_delay": None,
        "retry_max_delay": DEFAULT_RETRY_MAX_DELAY,
        "retry_on": [],
        "timeout": None,
        "result_ttl": None,
        "unique": False,
        "log_level": logging.INFO,
        "on_dependency_failure": "cancel",
    }


def test_stored_options__builtin_exception_classes_are_stored_by_builtins_path() -> None:
    assert tasks.noop.using(retry_on=(TimeoutError,)).stored_options()["retry_on"] == [
        "builtins.TimeoutError"
    ]


def test_log_level__a_level_name_is_stored_as_its_number() -> None:
    assert tasks.noop.using(log_level="DEBUG").stored_options()["log_level"] == logging.DEBUG


@pytest.mark.parametrize("level", ["LOUD", -1, True, 2.5])
def test_log_level__anything_but_a_logging_level_is_refused(level: object) -> None:
    with pytest.raises(InvalidTaskOptions, match=r"log_level=.*logging level"):
        tasks.noop.using(log_level=level)


def test_on_dependency_failure__only_cancel_or_run() -> None:
    assert tasks.noop.using(on_dependency_failure="run").on_dependency_failure == "run"
    with pytest.raises(
        InvalidTaskOptions, match=r"on_dependency_failure='skip'.*'cancel' or 'run'"
    ):
        tasks.noop.using(on_dependency_failure="skip")


# --- pickling and resolving -------------------------------------------------------------------


@pytest.mark.parametrize(
    "original",
    [
        tasks.noop,
        tasks.configured,
        tasks.with_callables,
        tasks.async_add,
        tasks.build_report.using(priority=-5, max_attempts=9, timeout=12),
    ],
    ids=lambda original: original.module_path,
)
def test_pickle__tasks_round_trip_by_path(original: TaskmillTask[..., Any]) -> None:
    restored = pickle.loads(pickle.dumps(original))  # noqa: S301 - our own data

    assert restored == original
    assert restored.func is original.func
    assert restored.max_attempts == original.max_attempts


def test_resolve_task__returns_the_registered_task() -> None:
    assert resolve_task(NOOP) is tasks.noop


def test_resolve_task__a_plain_function_is_not_registered() -> None:
    with pytest.raises(TaskNotRegistered, match=r"is not a registered Taskmill task .*function"):
        resolve_task("tests.testapp.tasks.not_a_task")


def test_resolve_task__a_path_that_does_not_import_is_not_registered() -> None:
    with pytest.raises(TaskNotRegistered, match=r"can't be imported .* renamed or removed"):
        resolve_task("tests.testapp.tasks.removed_long_ago")


def test_resolve_task__an_arbitrary_callable_is_never_resolved() -> None:
    with pytest.raises(TaskNotRegistered):
        resolve_task("os.system")


def test_task_not_registered__is_django_invalid_task() -> None:
    assert issubclass(TaskNotRegistered, InvalidTask)


# --- Django's own decorator (6.1: extra keyword arguments reach the backend's task_class) -----


@pytest.mark.requires_django("6.1")
def test_django_task_decorator__makes_a_taskmill_task_with_options() -> None:
    from django.tasks import task as django_task

    made = django_task(max_attempts=3, timeout=timedelta(seconds=90))(tasks.noop.func)  # type: ignore[call-overload]  # 6.1 passes options on; the stubs don't know

    assert django.VERSION >= (6, 1)
    assert isinstance(made, TaskmillTask)
    assert made.max_attempts == 3
    assert made.timeout == 90.0


@pytest.mark.requires_django("6.1")
def test_django_task_decorator__invalid_option_is_refused() -> None:
    from django.tasks import task as django_task

    with pytest.raises(InvalidTaskOptions, match="max_attempts=0"):
        django_task(max_attempts=0)(tasks.noop.func)  # type: ignore[call-overload]  # as above
