"""TaskmillTask: django.tasks' Task with Taskmill's options, the @task decorator, and resolving
a stored task path back to a registered task."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal, NoReturn, Self, TypedDict, overload

from django.db.models import Model
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME, Task, TaskResult
from django.tasks.base import DEFAULT_TASK_PRIORITY
from django.utils import timezone
from django.utils.inspect import is_module_level_function
from django.utils.module_loading import import_string

from .exceptions import InvalidTaskOptions, TaskNotRegistered
from .retry import DEFAULT_RETRY_MAX_DELAY

type Seconds = float | int | timedelta
type RetryDelay = Seconds | Callable[[int], float] | None
type UniqueOption = bool | Callable[..., str]
type DependencyFailurePolicy = Literal["cancel", "run"]

DEPENDENCY_FAILURE_POLICIES: Final = ("cancel", "run")


class StoredOptions(TypedDict):
    """The task options as stored on a TaskRecord row (JSON)."""

    max_attempts: int
    retry_delay: float | str | None  # seconds, or the import path of a delay function
    retry_max_delay: float
    retry_on: list[str]
    timeout: float | None
    result_ttl: float | None
    unique: bool | str  # or the import path of a key function
    log_level: int  # the lowest logging level captured into the task's log
    on_dependency_failure: str  # DependencyFailurePolicy


OPTION_NAMES: Final = frozenset(StoredOptions.__annotations__) | {"depends_on", "for_object"}


def _path_of(obj: Callable[..., Any] | type) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _seconds(value: Seconds) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _optional_seconds(value: Seconds | None) -> float | None:
    return None if value is None else _seconds(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | timedelta) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskmillTask[**P, R](Task):  # type: ignore[type-arg]  # Task is generic only in the stubs
    """A task with Taskmill's options; durations are normalised to float seconds."""

    max_attempts: int = 1
    retry_delay: RetryDelay = None
    retry_max_delay: Seconds = DEFAULT_RETRY_MAX_DELAY
    retry_on: tuple[type[BaseException], ...] = ()
    timeout: Seconds | None = None
    result_ttl: Seconds | None = None
    unique: UniqueOption = False
    log_level: int | str = logging.INFO
    on_dependency_failure: DependencyFailurePolicy = "cancel"
    # Per-enqueue bindings, not part of what the task *is*: two results of the same task
    # compare equal whatever objects they were bound to.
    depends_on: tuple[TaskResult[Any, Any] | str, ...] = field(default=(), compare=False)
    for_object: Model | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Construction-time normalisation, as Django's TaskResult does for args: a frozen
        # instance is never changed after __init__ returns.
        for name in ("retry_max_delay", "timeout", "result_ttl"):
            value = getattr(self, name)
            if _is_number(value):
                object.__setattr__(self, name, _seconds(value))
        if _is_number(self.retry_delay):
            object.__setattr__(self, "retry_delay", _seconds(self.retry_delay))  # type: ignore[arg-type]  # narrowed by _is_number
        if isinstance(self.retry_on, type):
            object.__setattr__(self, "retry_on", (self.retry_on,))
        elif not isinstance(self.retry_on, tuple | list):
            _fail(self, "retry_on", self.retry_on, "pass an exception class or a tuple of them")
        object.__setattr__(self, "retry_on", tuple(self.retry_on))
        object.__setattr__(self, "depends_on", _dependencies_tuple(self, self.depends_on))
        object.__setattr__(self, "log_level", _log_level(self, self.log_level))
        validate_options(self)
        Task.__post_init__(self)

    def __reduce__(
        self,
    ) -> tuple[Callable[..., TaskmillTask[..., Any]], tuple[str, dict[str, Any]]]:
        # Pickle by the registered task's path (Django 6.0's Task can't pickle otherwise).
        state = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "func"}
        return (_reconstruct, (self.module_path, state))

    def using(
        self,
        *,
        priority: int | None = None,
        queue_name: str | None = None,
        run_after: datetime | timedelta | float | None = None,
        backend: str | None = None,
        **options: Any,
    ) -> Self:
        """Return a copy with other defaults; accepts every Taskmill option too."""
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            raise InvalidTaskOptions(
                f"Unknown option(s) {', '.join(map(repr, unknown))} for {self.module_path}"
                f".using(); allowed: priority, queue_name, run_after, backend, "
                f"{', '.join(sorted(OPTION_NAMES))}."
            )
        changes: dict[str, Any] = dict(options)
        if priority is not None:
            changes["priority"] = priority
        if queue_name is not None:
            changes["queue_name"] = queue_name
        if backend is not None:
            changes["backend"] = backend
        if run_after is not None:
            changes["run_after"] = absolute_run_after(run_after)
        return replace(self, **changes)

    def stored_options(self) -> StoredOptions:
        """Return the options as JSON for the record row."""
        retry_delay = self.retry_delay
        unique = self.unique
        return StoredOptions(
            max_attempts=self.max_attempts,
            retry_delay=_path_of(retry_delay)
            if callable(retry_delay)
            else _optional_seconds(retry_delay),
            retry_max_delay=_seconds(self.retry_max_delay),
            retry_on=[_path_of(kind) for kind in self.retry_on],
            timeout=_optional_seconds(self.timeout),
            result_ttl=_optional_seconds(self.result_ttl),
            unique=_path_of(unique) if callable(unique) else unique,
            log_level=int(self.log_level),
            on_dependency_failure=self.on_dependency_failure,
        )


def _dependencies_tuple(
    task: TaskmillTask[..., Any], value: object
) -> tuple[TaskResult[Any, Any] | str, ...]:
    # One result (or id) is a list of one, as retry_on takes one class; a str is not a list
    # of one-letter ids.
    if isinstance(value, TaskResult | str):
        return (value,)
    if not isinstance(value, Iterable):
        _fail(task, "depends_on", value, "pass TaskResult objects or result ids")
    return tuple(value)


def _log_level(task: TaskmillTask[..., Any], value: object) -> int:
    # A name ("DEBUG") is what people write in LOGGING; the row stores the number.
    if isinstance(value, str) and isinstance(logging.getLevelNamesMapping().get(value), int):
        return logging.getLevelNamesMapping()[value]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    _fail(task, "log_level", value, "pass a logging level such as logging.INFO or 'DEBUG'")


def _reconstruct(path: str, state: dict[str, Any]) -> TaskmillTask[..., Any]:
    registered = resolve_task(path)
    return replace(registered, **state)


def absolute_run_after(value: datetime | timedelta | float) -> datetime:
    """Turn a delay (timedelta or seconds from now) into an aware datetime."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise InvalidTaskOptions(
            f"run_after must be an aware datetime, a timedelta or a number of seconds, "
            f"not {type(value).__name__} ({value!r})."
        )
    return timezone.now() + (value if isinstance(value, timedelta) else timedelta(seconds=value))


def _fail(task: TaskmillTask[..., Any], option: str, value: object, expected: str) -> NoReturn:
    raise InvalidTaskOptions(
        f"{option}={value!r} is not valid for task {task.module_path}: {expected}."
    )


def _imports_as(path: str) -> object:
    try:
        return import_string(path)
    except ImportError:
        return None


def _require_importable(task: TaskmillTask[..., Any], option: str, value: Any) -> None:
    # Workers and get_result() import these back by path, so the path must lead to this very
    # object: a nested function or a lambda (even one bound at module level) cannot be stored.
    fix = "define it at module level with def or class, so workers can import it"
    if not (isinstance(value, type) or is_module_level_function(value)):
        _fail(task, option, value, fix)
    path = _path_of(value)
    if _imports_as(path) is not value:
        _fail(task, option, value, f"it must be importable as {path}: {fix}")


def validate_options(task: TaskmillTask[..., Any]) -> None:
    """Check every Taskmill option; raise InvalidTaskOptions naming the option and the fix."""
    _validate_numbers(task)
    if task.retry_delay is not None and not isinstance(task.retry_delay, float):
        if not callable(task.retry_delay):
            _fail(
                task,
                "retry_delay",
                task.retry_delay,
                "pass seconds, a timedelta, or a function (attempt) -> seconds",
            )
        _require_importable(task, "retry_delay", task.retry_delay)
    for kind in task.retry_on:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            _fail(task, "retry_on", task.retry_on, "pass exception classes")
        _require_importable(task, "retry_on", kind)
    if not isinstance(task.unique, bool):
        if not callable(task.unique):
            _fail(task, "unique", task.unique, "pass True, False, or a function returning a key")
        _require_importable(task, "unique", task.unique)
    if task.on_dependency_failure not in DEPENDENCY_FAILURE_POLICIES:
        _fail(task, "on_dependency_failure", task.on_dependency_failure, "pass 'cancel' or 'run'")
    for dependency in task.depends_on:
        if not isinstance(dependency, TaskResult | str):
            _fail(task, "depends_on", dependency, "pass TaskResult objects or result ids")
    if task.for_object is not None:
        if not isinstance(task.for_object, Model):
            _fail(task, "for_object", task.for_object, "pass a model instance")
        elif task.for_object.pk is None:
            _fail(task, "for_object", task.for_object, "save the instance first")


def _validate_numbers(task: TaskmillTask[..., Any]) -> None:
    if (
        not isinstance(task.max_attempts, int)
        or isinstance(task.max_attempts, bool)
        or task.max_attempts < 1
    ):
        _fail(task, "max_attempts", task.max_attempts, "pass a whole number >= 1")
    if isinstance(task.retry_delay, float) and task.retry_delay < 0:
        _fail(task, "retry_delay", task.retry_delay, "pass a delay >= 0")
    if not isinstance(task.retry_max_delay, float) or task.retry_max_delay <= 0:
        _fail(task, "retry_max_delay", task.retry_max_delay, "pass seconds > 0 or a timedelta")
    for name in ("timeout", "result_ttl"):
        value = getattr(task, name)
        if value is not None and (not isinstance(value, float) or value <= 0):
            _fail(task, name, value, "pass seconds > 0, a timedelta, or None")


def resolve_task(path: str) -> TaskmillTask[..., Any]:
    """Return the registered task stored at path.

    Raise TaskNotRegistered if the path doesn't import or names anything but a Taskmill task,
    so a row can never make a worker run an arbitrary callable.
    """
    try:
        found = import_string(path)
    except ImportError as error:
        raise TaskNotRegistered(
            f"Task {path!r} can't be imported ({error}); was it renamed or removed?"
        ) from error
    if not isinstance(found, TaskmillTask) or found.module_path != path:
        raise TaskNotRegistered(
            f"{path!r} is not a registered Taskmill task (found {type(found).__name__}); "
            "only functions decorated with @task can run."
        )
    return found


@overload
def task[**P, R](function: Callable[P, R], /) -> TaskmillTask[P, R]: ...
@overload
def task[**P, R](
    *,
    priority: int = ...,
    queue_name: str = ...,
    backend: str = ...,
    takes_context: bool = ...,
    **options: Any,
) -> Callable[[Callable[P, R]], TaskmillTask[P, R]]: ...
def task[**P, R](
    function: Callable[P, R] | None = None,
    /,
    *,
    priority: int = DEFAULT_TASK_PRIORITY,
    queue_name: str = DEFAULT_TASK_QUEUE_NAME,
    backend: str = DEFAULT_TASK_BACKEND_ALIAS,
    takes_context: bool = False,
    **options: Any,
) -> TaskmillTask[P, R] | Callable[[Callable[P, R]], TaskmillTask[P, R]]:
    """Make a function a Taskmill task: django.tasks.task's signature plus Taskmill's options."""
    if "run_after" in options:
        raise TypeError(
            "run_after cannot be set in @task; use .using(run_after=...) when enqueueing."
        )
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise InvalidTaskOptions(
            f"Unknown @task option(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(OPTION_NAMES))}."
        )

    def wrapper(func: Callable[P, R]) -> TaskmillTask[P, R]:
        return TaskmillTask(
            func=func,
            priority=priority,
            queue_name=queue_name,
            backend=backend,
            takes_context=takes_context,
            run_after=None,
            **options,
        )

    if function is not None:
        return wrapper(function)
    return wrapper
