"""Declared schedules: the @periodic and @cron decorators, the SCHEDULE setting, and the
registry workers sync the Schedule table from. No database here."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Final

from django.conf import settings
from django.tasks.exceptions import InvalidTask

from .codec import encode_arguments
from .exceptions import ConfigurationError
from .task import TaskmillTask, resolve_task
from .timing import CatchUp, Timing, check_cron, check_every, zone

SETTING_KEYS: Final = frozenset(
    {"task", "cron", "every", "timezone", "args", "kwargs", "catch_up", "start_now"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSpec:
    """One schedule as declared in code or settings, validated."""

    name: str
    task_path: str
    backend: str
    timing: Timing
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    catch_up: CatchUp = CatchUp.ONCE
    start_now: bool = False


def _catch_up(value: object, *, schedule: str) -> CatchUp:
    try:
        return CatchUp(str(value))
    except ValueError:
        raise ConfigurationError(
            f"Schedule {schedule!r}: catch_up must be 'once' or 'skip', not {value!r}."
        ) from None


def build_spec(
    *,
    name: str,
    task_path: str,
    backend: str,
    cron: object = None,
    every: object = None,
    timezone: object = None,
    args: object = (),
    kwargs: object = None,
    catch_up: object = CatchUp.ONCE,
    start_now: object = False,
) -> ScheduleSpec:
    """Validate one schedule's declaration; raise ConfigurationError naming it and the fix."""
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ConfigurationError(f"A schedule name must be 1 to 200 characters, not {name!r}.")
    if (cron is None) == (every is None):
        raise ConfigurationError(f"Schedule {name!r}: give either cron or every (not both).")
    zone_name = settings.TIME_ZONE if timezone is None else timezone
    if not isinstance(zone_name, str):
        raise ConfigurationError(f"Schedule {name!r}: timezone must be a str, not {zone_name!r}.")
    zone(zone_name, schedule=name)
    if isinstance(args, str) or not isinstance(args, Sequence):
        raise ConfigurationError(f"Schedule {name!r}: args must be a list, not {args!r}.")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ConfigurationError(f"Schedule {name!r}: kwargs must be a dict, not {kwargs!r}.")
    try:
        encode_arguments(list(args), dict(kwargs or {}))
    except TypeError as error:
        raise ConfigurationError(f"Schedule {name!r}: {error}") from error
    if not isinstance(start_now, bool):
        raise ConfigurationError(f"Schedule {name!r}: start_now must be True or False.")
    if start_now and cron is not None:
        raise ConfigurationError(
            f"Schedule {name!r}: start_now applies to every=..., not to cron schedules."
        )
    timing = (
        Timing(cron=check_cron(cron, schedule=name), timezone=zone_name)
        if cron is not None
        else Timing(every=check_every(every, schedule=name), timezone=zone_name)
    )
    return ScheduleSpec(
        name=name,
        task_path=task_path,
        backend=backend,
        timing=timing,
        args=tuple(args),
        kwargs=dict(kwargs or {}),
        catch_up=_catch_up(catch_up, schedule=name),
        start_now=start_now,
    )


class Registry:
    """The schedules declared with @periodic and @cron, by name."""

    def __init__(self) -> None:
        self._specs: dict[str, ScheduleSpec] = {}

    def add(self, spec: ScheduleSpec) -> None:
        """Register a schedule; raise ConfigurationError if its name is taken by another."""
        known = self._specs.get(spec.name)
        if known is not None and known != spec:
            raise ConfigurationError(
                f"Schedule {spec.name!r} is declared twice with different settings; give "
                "each schedule its own name=."
            )
        self._specs[spec.name] = spec

    def specs(self) -> list[ScheduleSpec]:
        return list(self._specs.values())

    @contextmanager
    def isolated(self) -> Iterator[Registry]:
        """Restore the registered schedules afterwards (for tests)."""
        saved = dict(self._specs)
        try:
            yield self
        finally:
            self._specs = saved


registry: Final = Registry()


def _declare(
    task: object, decorator: str, name: str | None, **declared: Any
) -> TaskmillTask[..., Any]:
    if not isinstance(task, TaskmillTask):
        raise TypeError(f"@{decorator} decorates a task: put it above @task (got {task!r}).")
    registry.add(
        build_spec(
            name=name or task.module_path,
            task_path=task.module_path,
            backend=task.backend,
            **declared,
        )
    )
    return task


type TaskDecorator = Callable[[TaskmillTask[..., Any]], TaskmillTask[..., Any]]


def periodic(
    *,
    every: timedelta | float,
    start_now: bool = False,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    name: str | None = None,
    catch_up: str = CatchUp.ONCE,
) -> TaskDecorator:
    """Enqueue the task every `every` (a timedelta or seconds); stack it above @task.

    The first run is one interval after a worker first sees the schedule, or at once with
    start_now=True. The name defaults to the task's path.
    """

    def decorate(task: TaskmillTask[..., Any]) -> TaskmillTask[..., Any]:
        return _declare(
            task,
            "periodic",
            name,
            every=every,
            start_now=start_now,
            args=args,
            kwargs=kwargs,
            catch_up=catch_up,
        )

    return decorate


def cron(
    expression: str,
    *,
    timezone: str | None = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    name: str | None = None,
    catch_up: str = CatchUp.ONCE,
) -> TaskDecorator:
    """Enqueue the task at the times of a cron expression ("m h dom mon dow" or "@daily") in
    `timezone` (default: settings.TIME_ZONE); stack it above @task."""

    def decorate(task: TaskmillTask[..., Any]) -> TaskmillTask[..., Any]:
        return _declare(
            task,
            "cron",
            name,
            cron=expression,
            timezone=timezone,
            args=args,
            kwargs=kwargs,
            catch_up=catch_up,
        )

    return decorate


def specs_from_setting(raw: Mapping[str, Any] | None) -> list[ScheduleSpec]:
    """Validate TASKMILL["SCHEDULE"] (name -> entry); raise ConfigurationError naming the entry.

    Task paths are checked by check_tasks(), once the apps are loaded.
    """
    specs = []
    for name, entry in (raw or {}).items():
        where = f"TASKMILL['SCHEDULE'][{name!r}]"
        if not isinstance(entry, Mapping):
            raise ConfigurationError(
                f"{where} must be a dict such as {{'task': ..., 'cron': ...}}."
            )
        unknown = sorted(set(entry) - SETTING_KEYS)
        if unknown:
            raise ConfigurationError(
                f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; allowed: "
                f"{', '.join(sorted(SETTING_KEYS))}."
            )
        task_path = entry.get("task")
        if not isinstance(task_path, str) or "." not in task_path:
            raise ConfigurationError(
                f"{where}['task'] must be the dotted path of a task, such as "
                f"'myapp.tasks.send_report', not {task_path!r}."
            )
        values = {key: value for key, value in entry.items() if key != "task"}
        specs.append(build_spec(name=str(name), task_path=task_path, backend="", **values))
    return specs


def declared_specs(
    raw_setting: Mapping[str, Any] | None, declared: Registry | None = None
) -> list[ScheduleSpec]:
    """Return every declared schedule: decorated ones, then the SCHEDULE setting's.

    A setting entry's backend is its task's; raise ConfigurationError if its task path is not
    a registered task, or a name is declared both ways.
    """
    specs = (declared or registry).specs()
    names = {spec.name for spec in specs}
    for spec in specs_from_setting(raw_setting):
        if spec.name in names:
            raise ConfigurationError(
                f"Schedule {spec.name!r} is declared both with a decorator and in "
                "TASKMILL['SCHEDULE']; rename one."
            )
        try:
            task = resolve_task(spec.task_path)
        except InvalidTask as error:
            raise ConfigurationError(f"TASKMILL['SCHEDULE'][{spec.name!r}]: {error}") from error
        specs.append(_with_backend(spec, task.backend))
    return specs


def _with_backend(spec: ScheduleSpec, backend: str) -> ScheduleSpec:
    return replace(spec, backend=backend)


def specs_problems(declared: Registry, raw_setting: Mapping[str, Any] | None) -> list[str]:
    """Return what is wrong with the declared schedules (empty when a worker can run them)."""
    problems = []
    for spec in declared.specs():
        try:
            resolve_task(spec.task_path)
        except InvalidTask as error:
            problems.append(f"Schedule {spec.name!r}: {error}")
    try:
        declared_specs(raw_setting, declared)
    except ConfigurationError as error:
        problems.append(str(error))
    return problems
