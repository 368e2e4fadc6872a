"""enqueue() of one task object, planned on its first call: the task is checked and its row's
shared parameters prepared once, and each later call only encodes its arguments and inserts.

A task object is frozen, so what is derived from it alone stays true; what settings decide
(queues, the database, USE_TZ, the argument limit) is forgotten whenever a setting changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from django.tasks import TaskResult
from django.tasks.backends.base import BaseTaskBackend
from django.utils import timezone

from .codec import encode_arguments
from .enqueueing import build_record, json_texts
from .ids import new_task_id
from .queue import get_queue
from .queue.prepared import PreparedInsert
from .results import ready_result, task_for_record
from .task import TaskmillTask

PLAN_CACHE_SIZE: Final = 256
# (id(backend), id(task)) -> plan. Each plan holds its backend and task, so neither id can be
# reused by another object while the plan is kept. A plan holds no connection (each call uses
# its thread's), so threads may share one.
_PLANS: dict[tuple[int, int], EnqueuePlan] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class EnqueuePlan:
    """What every enqueue() of one task object through one backend shares."""

    backend: BaseTaskBackend
    task: TaskmillTask[..., Any]
    insert: PreparedInsert
    # The task of the returned results (task_for_record of the row), built once.
    result_task: TaskmillTask[..., Any]

    def enqueue(self, args: Sequence[object], kwargs: Mapping[str, object]) -> TaskResult[..., Any]:
        """Insert one call of the task and return its result, as the general path would.

        Raise TypeError for arguments JSON can't hold, ArgumentsTooLarge over the limit.
        """
        encoded_args, encoded_kwargs = encode_arguments(args, kwargs)
        args_text, kwargs_text = json_texts(self.task, encoded_args, encoded_kwargs)
        now = timezone.now()
        task_id = new_task_id()
        self.insert.execute(task_id=task_id, args_text=args_text, kwargs_text=kwargs_text, now=now)
        return ready_result(
            self._result_task(now),
            task_id=str(task_id),
            enqueued_at=now,
            args=encoded_args,
            kwargs=encoded_kwargs,
        )

    def _result_task(self, now: datetime) -> TaskmillTask[..., Any]:
        # A result shows run_after only if it differs from the enqueue time (task_for_record);
        # a task's own run_after equal to this very instant shows as None, as it always has.
        if self.task.run_after is not None and self.task.run_after == now:
            return replace(self.result_task, run_after=None)
        return self.result_task


def can_plan(task: object) -> bool:
    """Whether enqueue() of this task can be planned: a Taskmill task inserted as one plain
    row (no unique key to de-duplicate, no dependencies to lock, no object to look up)."""
    return (
        isinstance(task, TaskmillTask)
        and task.unique is False
        and not task.depends_on
        and task.for_object is None
    )


def find_plan(backend: BaseTaskBackend, task: object) -> EnqueuePlan | None:
    """Return the plan made for this backend and task object, if there is one."""
    plan = _PLANS.get((id(backend), id(task)))
    if plan is None or plan.task is not task or plan.backend is not backend:
        return None
    return plan


def make_plan(
    backend: BaseTaskBackend, task: TaskmillTask[..., Any], *, database_alias: str
) -> EnqueuePlan:
    """Plan enqueue() of a task that `backend` has validated and can_plan() accepts."""
    now = timezone.now()
    template = build_record(task, (), {}, database_alias=database_alias, now=now)
    result_task = task_for_record(template, registered=task)
    if result_task.run_after != task.run_after:
        # The task's own run_after was the template's enqueue time: shown as None for that
        # instant only (_result_task), never for the calls that follow.
        result_task = replace(result_task, run_after=task.run_after)
    plan = EnqueuePlan(
        backend=backend,
        task=task,
        insert=get_queue(database_alias).prepare_insert(
            template, own_run_after=task.run_after is not None
        ),
        result_task=result_task,
    )
    if len(_PLANS) >= PLAN_CACHE_SIZE:
        _PLANS.clear()
    _PLANS[(id(backend), id(task))] = plan
    return plan


def forget_plans(**kwargs: object) -> None:
    """Forget every plan (a setting_changed receiver: settings decide part of each)."""
    _PLANS.clear()
