"""DatabaseBackend: django.tasks' backend API over Taskmill's queue. Thin: it validates, builds
records, hands them to the queue, and reads results back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, cast

from django.conf import settings
from django.core import checks
from django.db import DEFAULT_DB_ALIAS
from django.tasks import Task, TaskResult
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone

from .enqueue_plans import can_plan, find_plan, make_plan
from .enqueueing import build_record, build_records, dependency_ids, encode_calls
from .exceptions import ConfigurationError, TaskNotRegistered
from .ids import dashed, new_task_hexes, parse_task_id
from .models import TaskRecord
from .queue import get_queue
from .queue.insert_rows import Copies
from .results import ready_results, task_for_record, to_task_result
from .task import TaskmillTask, resolve_task

OPTION_KINDS: Final[dict[str, type]] = {"DATABASE": str}
QUEUE_NAME_MAX_LENGTH: Final = TaskRecord._meta.get_field("queue_name").max_length or 100

type Call = tuple[Sequence[object], Mapping[str, object]]


def backend_problems(alias: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (problem, hint) pairs for a TASKS entry using this backend."""
    where = f"TASKS[{alias!r}]"
    problems: list[tuple[str, str]] = []
    options = params.get("OPTIONS", {})
    if not isinstance(options, Mapping):
        return [(f"{where}['OPTIONS'] must be a dict.", "Use e.g. {'DATABASE': 'default'}.")]
    for key, value in options.items():
        if key not in OPTION_KINDS:
            problems.append(
                (
                    f"Unknown key {key!r} in {where}['OPTIONS'].",
                    f"Allowed keys: {', '.join(sorted(OPTION_KINDS))}.",
                )
            )
        elif not isinstance(value, OPTION_KINDS[key]):
            problems.append(
                (
                    f"{where}['OPTIONS'][{key!r}] must be {OPTION_KINDS[key].__name__}, "
                    f"not {type(value).__name__}.",
                    "DATABASE names an alias of settings.DATABASES.",
                )
            )
    database = options.get("DATABASE", DEFAULT_DB_ALIAS)
    if isinstance(database, str) and database not in settings.DATABASES:
        problems.append(
            (
                f"{where}['OPTIONS']['DATABASE'] is {database!r}, which is not in DATABASES.",
                f"Use one of: {', '.join(sorted(settings.DATABASES))}.",
            )
        )
    queues = params.get("QUEUES")
    if queues is not None:
        problems.extend(_queue_problems(where, queues))
    return problems


def _queue_problems(where: str, queues: object) -> list[tuple[str, str]]:
    hint = f"List queue names: non-empty strings of at most {QUEUE_NAME_MAX_LENGTH} characters."
    if isinstance(queues, str) or not isinstance(queues, Iterable):
        return [(f"{where}['QUEUES'] must be a list of queue names, not {queues!r}.", hint)]
    return [
        (f"{where}['QUEUES'] contains an invalid queue name {name!r}.", hint)
        for name in queues
        if not isinstance(name, str) or not name or len(name) > QUEUE_NAME_MAX_LENGTH
    ]


class DatabaseBackend(BaseTaskBackend):
    """Keep tasks in a database table; workers run them (`manage.py taskmill worker`)."""

    task_class = TaskmillTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.params = params
        self.problems = backend_problems(alias, params)

    @property
    def database_alias(self) -> str:
        """The database alias holding this backend's queue.

        Raise ConfigurationError if the backend's settings are wrong (`check` lists them all).
        """
        if self.problems:
            message, hint = self.problems[0]
            raise ConfigurationError(f"{message} {hint}")
        database: str = self.options.get("DATABASE", DEFAULT_DB_ALIAS)
        return database

    def validate_task(self, task: Task[..., Any]) -> None:
        super().validate_task(task)
        if not isinstance(task, TaskmillTask):
            raise InvalidTask(
                f"{task.module_path} is a {type(task).__name__}; the {self.alias!r} backend "
                "runs tasks made with @taskmill.task or @django.tasks.task."
            )

    def _check_registered(self, task: TaskmillTask[..., Any]) -> None:
        # A worker finds the task by its path; fail now, not in the worker, if it can't.
        try:
            registered = resolve_task(task.module_path)
        except TaskNotRegistered as error:
            raise InvalidTask(
                f"{error} A task must be bound at module level under its function's name."
            ) from error
        if registered.func is not task.func:
            raise InvalidTask(
                f"{task.module_path} resolves to another function; a task must be bound at "
                "module level under its function's name."
            )

    def enqueue[**P, R](
        self, task: Task[P, R], args: Sequence[object], kwargs: Mapping[str, object]
    ) -> TaskResult[P, R]:
        """Store the task for a worker to run; inside atomic(), it exists only if it commits."""
        plan = find_plan(self, task)
        if plan is None:
            if not can_plan(task):
                # _enqueue_calls builds results for any task; this one's types are the caller's.
                return cast("TaskResult[P, R]", self._enqueue_calls(task, [(args, kwargs)])[0])
            self.validate_task(task)
            assert isinstance(task, TaskmillTask)  # noqa: S101 - can_plan guarantees it
            self._check_registered(task)
            plan = make_plan(self, task, database_alias=self.database_alias)
        else:
            # Checked on every call: the module's binding can change, the task object can't.
            self._check_registered(plan.task)
        result = plan.enqueue(args, kwargs)
        task_enqueued.send(type(self), task_result=result)
        return cast("TaskResult[P, R]", result)

    def enqueue_many(
        self, task: Task[..., Any], calls: Iterable[Call]
    ) -> list[TaskResult[..., Any]]:
        """Enqueue one task with many argument sets, inserting in batches.

        Raise TypeError or ArgumentsTooLarge naming the call (calls[3]) and the argument.
        """
        if isinstance(task, TaskmillTask) and task.unique is False and not task.depends_on:
            return self._enqueue_copies(task, calls)
        return self._enqueue_calls(task, calls, name_calls=True)

    def _enqueue_copies(
        self, task: TaskmillTask[..., Any], calls: Iterable[Call]
    ) -> list[TaskResult[..., Any]]:
        # Without unique keys or dependencies, every row is the same but for its id and
        # arguments: the row's other values and the results' task are made once, for all.
        self.validate_task(task)
        self._check_registered(task)
        encoded = encode_calls(task, calls)
        if not encoded.args:
            return []
        now = timezone.now()
        database = self.database_alias
        template = build_record(task, (), {}, database_alias=database, now=now)
        hex_ids = new_task_hexes(len(encoded.args))
        get_queue(database).insert_copies(
            Copies(
                template=template,
                ids=hex_ids,
                args_texts=encoded.args_texts,
                kwargs_texts=encoded.kwargs_texts,
            )
        )
        results = ready_results(
            task_for_record(template, task),
            task_ids=[dashed(hex_id) for hex_id in hex_ids],
            enqueued_at=now,
            args=encoded.args,
            kwargs=encoded.kwargs,
        )
        sender = type(self)
        for result in results:
            task_enqueued.send(sender, task_result=result)
        return results

    def _enqueue_calls(
        self, task: Task[..., Any], calls: Iterable[Call], *, name_calls: bool = False
    ) -> list[TaskResult[..., Any]]:
        self.validate_task(task)
        assert isinstance(task, TaskmillTask)  # noqa: S101 - validate_task guarantees it
        self._check_registered(task)
        now = timezone.now()
        database = self.database_alias
        records = build_records(
            task, calls, database_alias=database, now=now, name_calls=name_calls
        )
        depends_on = dependency_ids(task)
        stored = get_queue(database).insert(records, [depends_on] * len(records))
        # The records built here share the task's values, so they share one built Task; a
        # de-duplicated call gets the task of the record that stood in its place.
        built = task_for_record(records[0], task) if records else None
        results = []
        for record, original in zip(stored, records, strict=True):
            if record is original:
                result = to_task_result(record, task=built)
                task_enqueued.send(type(self), task_result=result)
            else:
                result = to_task_result(record)
            results.append(result)
        return results

    def get_result(self, result_id: str) -> TaskResult[..., Any]:
        """Read a result fresh from the database; raise TaskResultDoesNotExist if unknown."""
        task_id = parse_task_id(result_id)
        if task_id is None:
            raise TaskResultDoesNotExist(f"{result_id!r} is not a Taskmill result id.")
        try:
            record = TaskRecord.objects.using(self.database_alias).get(id=task_id)
        except TaskRecord.DoesNotExist:
            raise TaskResultDoesNotExist(result_id) from None
        return to_task_result(record)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return [
            checks.Error(message, hint=hint, obj=f"TASKS[{self.alias!r}]", id="taskmill.E001")
            for message, hint in self.problems
        ]
