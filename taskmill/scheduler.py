"""The Scheduler: syncs Schedule rows from the declared schedules, and enqueues each due time
of each schedule exactly once.

Exactly once, whatever the number of leaders: a run is inserted in the same transaction as a
compare-and-set that advances its schedule's next_due_at, and the unique (schedule,
scheduled_for) constraint refuses a duplicate even if that ever failed. The leader lock only
keeps the other workers from doing the same work for nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Min, QuerySet
from django.tasks.exceptions import InvalidTask
from django.tasks.signals import task_enqueued
from django.utils import timezone

from .backend import DatabaseBackend
from .codec import encode_arguments
from .conf import TaskmillSettings
from .enqueueing import build_record
from .models import Schedule, TaskRecord
from .queue import get_queue
from .queue.clock import DatabaseNow, read_database_now
from .results import to_task_result
from .schedules import ScheduleSpec
from .task import TaskmillTask, resolve_task
from .timing import CatchUp, Timing, plan_due

logger = logging.getLogger(__name__)


def missed_after(settings: TaskmillSettings) -> timedelta:
    """How late a due time may be before it counts as missed: longer than a leader fail-over
    (a lease, plus the time to notice) takes."""
    return timedelta(seconds=2 * settings.LEASE_SECONDS + 30)


def timing_of(schedule: Schedule) -> Timing:
    every = schedule.interval_seconds
    return Timing(
        cron=schedule.cron,
        every=timedelta(seconds=every) if every is not None else None,
        timezone=schedule.timezone,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncReport:
    added: list[str]
    changed: list[str]
    disabled: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """What one enqueue_due() call did, and when the next schedule is due."""

    enqueued: int
    now: datetime
    next_due_at: datetime | None


def _definition(spec: ScheduleSpec) -> dict[str, Any]:
    args, kwargs = encode_arguments(spec.args, spec.kwargs)
    every = spec.timing.every
    return {
        "backend": spec.backend,
        "task_path": spec.task_path,
        "args": args,
        "kwargs": kwargs,
        "cron": spec.timing.cron,
        "interval_seconds": every.total_seconds() if every is not None else None,
        "timezone": spec.timing.timezone,
        "catch_up": str(spec.catch_up),
    }


TIMING_FIELDS = ("cron", "interval_seconds", "timezone")


class Scheduler:
    """The schedules of one backend, stored in its queue's database."""

    def __init__(self, *, backend_alias: str, database_alias: str, missed_after: timedelta):
        self.backend_alias = backend_alias
        self.database_alias = database_alias
        self.missed_after = missed_after

    @property
    def _rows(self) -> QuerySet[Schedule]:
        return Schedule.objects.using(self.database_alias).filter(backend=self.backend_alias)

    # -- Sync -------------------------------------------------------------------------------

    def sync(self, specs: Sequence[ScheduleSpec], now: datetime | None = None) -> SyncReport:
        """Add, change and disable Schedule rows so they match the declared schedules.

        An operator's enable/disable is kept; a schedule no longer declared is disabled.
        """
        now = now or read_database_now(self.database_alias)
        mine = [spec for spec in specs if spec.backend == self.backend_alias]
        added, changed = [], []
        for spec in mine:
            outcome = self._sync_one(spec, now)
            if outcome == "added":
                added.append(spec.name)
            elif outcome == "changed":
                changed.append(spec.name)
        gone = self._rows.filter(in_code=True).exclude(name__in=[spec.name for spec in mine])
        disabled = sorted(gone.values_list("name", flat=True))
        gone.update(in_code=False, enabled=False, updated_at=timezone.now())
        for name in disabled:
            logger.info("schedule disabled (no longer declared) schedule=%s", name)
        return SyncReport(added=added, changed=changed, disabled=disabled)

    def _sync_one(self, spec: ScheduleSpec, now: datetime) -> str | None:
        using = self.database_alias
        definition = _definition(spec)
        with transaction.atomic(using=using):
            row = Schedule.objects.using(using).select_for_update().filter(name=spec.name).first()
            if row is None:
                return self._add(spec, definition, now)
            changes = {k: v for k, v in definition.items() if getattr(row, k) != v}
            if not row.in_code:
                # Declared again: enabled again, from now (the time it was gone isn't missed).
                changes.update(in_code=True, enabled=True)
            if any(k in changes for k in (*TIMING_FIELDS, "in_code")) or not row.next_due_at:
                changes["next_due_at"] = spec.timing.first_due(now)
            if not changes:
                return None
            for key, value in changes.items():
                setattr(row, key, value)
            row.save(using=using, update_fields=[*changes, "updated_at"])
        logger.info("schedule changed schedule=%s fields=%s", spec.name, ",".join(changes))
        return "changed"

    def _add(self, spec: ScheduleSpec, definition: dict[str, Any], now: datetime) -> str | None:
        try:
            with transaction.atomic(using=self.database_alias):
                Schedule.objects.using(self.database_alias).create(
                    name=spec.name,
                    next_due_at=spec.timing.first_due(now, start_now=spec.start_now),
                    **definition,
                )
        except IntegrityError:
            return None  # another worker added it at the same moment
        logger.info("schedule added schedule=%s", spec.name)
        return "added"

    # -- Enqueue ----------------------------------------------------------------------------

    def enqueue_due(self, now: datetime | None = None) -> Tick:
        """Enqueue every due time that has come, once; return what was done.

        `now` defaults to the database's clock (tests pass their own).
        """
        due_rows = self._rows.filter(enabled=True, next_due_at__isnull=False)
        rows = list(
            due_rows.filter(next_due_at__lte=now or DatabaseNow())
            .annotate(database_now=DatabaseNow())
            .order_by("next_due_at")
        )
        if now is None:
            now = rows[0].database_now if rows else read_database_now(self.database_alias)
        enqueued = sum(self._enqueue_schedule(row, now) for row in rows)
        next_due = due_rows.aggregate(next_due=Min("next_due_at"))["next_due"]
        return Tick(enqueued=enqueued, now=now, next_due_at=next_due)

    def _enqueue_schedule(self, row: Schedule, now: datetime) -> int:
        assert row.next_due_at is not None  # noqa: S101 - filtered by the caller
        plan = plan_due(
            timing_of(row),
            next_due=row.next_due_at,
            now=now,
            catch_up=CatchUp(row.catch_up),
            missed_after=self.missed_after,
        )
        if plan.missed:
            logger.warning(
                "schedule missed due times (no worker was up) schedule=%s since=%s catch_up=%s",
                row.name,
                row.next_due_at.isoformat(),
                row.catch_up,
            )
        using = self.database_alias
        with transaction.atomic(using=using):
            # The compare-and-set: only the caller that still sees the old next_due_at advances
            # the schedule and enqueues, so two leaders can't both enqueue a due time.
            advanced = (
                Schedule.objects.using(using)
                .filter(pk=row.pk, enabled=True, next_due_at=row.next_due_at)
                .update(
                    next_due_at=plan.next_due,
                    last_due_at=plan.runs[-1] if plan.runs else row.last_due_at,
                )
            )
            if not advanced:
                return 0
            return sum(self._insert_run(row, due, now) for due in plan.runs)

    def _insert_run(self, row: Schedule, due: datetime, now: datetime) -> int:
        try:
            task = resolve_task(row.task_path).using(run_after=due)
            record = build_record(
                task, row.args, row.kwargs, database_alias=self.database_alias, now=now
            )
        except (InvalidTask, TypeError, ValueError):
            # A task renamed or removed, or arguments it no longer takes: this due time is
            # lost, loudly, and the schedule goes on.
            logger.exception("schedule can't enqueue its task schedule=%s", row.name)
            return 0
        record.schedule = row
        record.scheduled_for = due
        try:
            with transaction.atomic(using=self.database_alias):
                get_queue(self.database_alias).insert([record])
        except IntegrityError:
            duplicate = (
                TaskRecord.objects.using(self.database_alias)
                .filter(schedule=row, scheduled_for=due)
                .exists()
            )
            if not duplicate:
                raise
            logger.warning(
                "schedule due time already enqueued, not again schedule=%s due=%s",
                row.name,
                due.isoformat(),
            )
            return 0
        logger.info(
            "schedule enqueued schedule=%s due=%s task_id=%s", row.name, due.isoformat(), record.id
        )
        _announce_on_commit(task, record, self.database_alias)
        return 1


def _announce_on_commit(task: TaskmillTask[..., Any], record: TaskRecord, using: str) -> None:
    # Record first, notify second: task_enqueued goes out once the run is committed.
    result = to_task_result(record, registered=task)
    transaction.on_commit(
        lambda: task_enqueued.send(DatabaseBackend, task_result=result), using=using
    )
