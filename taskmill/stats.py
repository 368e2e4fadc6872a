"""Read-only statistics for the dashboard, the metrics endpoint and `taskmill status`.

Every query is bounded so pages stay fast with millions of finished rows: active work is read
through the indexes over active states, finished work only for a recent window through the
(state, finished_at) index, and lists of rows are LIMITed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from django.db.models import Count, Min, Q
from django.db.models.functions import TruncMinute
from django.utils import timezone

from .conf import get_settings
from .models import TaskRecord, TaskRecordQuerySet, Worker
from .routers import queue_databases
from .states import ACTIVE_STATES, FINISHED_STATES, State

WINDOW: Final = timedelta(hours=1)
RUNNING_LIMIT: Final = 50
FAILURES_LIMIT: Final = 10
# Fields shown for a row in lists; errors and progress are small JSON, args are not read.
LIST_FIELDS: Final = (
    "id",
    "task_path",
    "queue_name",
    "priority",
    "state",
    "enqueued_at",
    "run_after",
    "started_at",
    "last_attempted_at",
    "finished_at",
    "attempts",
    "lease_owner",
    "progress",
    "errors",
)


@dataclass(slots=True)
class QueueStats:
    """One queue's active work: due and waiting (not yet due) ready tasks, blocked, running."""

    name: str
    due: int = 0
    waiting: int = 0
    blocked: int = 0
    running: int = 0
    oldest_due_at: datetime | None = None

    def oldest_wait(self, now: datetime) -> timedelta | None:
        """How long the oldest due task has waited past its run_after."""
        return None if self.oldest_due_at is None else max(now - self.oldest_due_at, timedelta())


@dataclass(frozen=True, slots=True, kw_only=True)
class Bucket:
    """Tasks that finished in one minute, by final state."""

    start: datetime
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0


@dataclass(slots=True, kw_only=True)
class Overview:
    """Everything the dashboard shows, read at `now`."""

    now: datetime
    queues: list[QueueStats] = field(default_factory=list)
    # state -> queue -> count: every active task, and tasks finished in the last WINDOW.
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    throughput: list[Bucket] = field(default_factory=list)
    running: list[TaskRecord] = field(default_factory=list)
    failures: list[TaskRecord] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)

    def state_totals(self) -> dict[str, int]:
        """Count per state over all queues, in the state machine's order."""
        return {state.value: sum(self.counts.get(state, {}).values()) for state in State}


def overview(now: datetime | None = None) -> Overview:
    """Read the dashboard's numbers from every queue database."""
    now = now or timezone.now()
    result = Overview(now=now)
    queues: dict[str, QueueStats] = {}
    minutes: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for using in queue_databases():
        _add_active(using, now, queues, result.counts)
        _add_finished(using, now, minutes, result.counts)
        result.running.extend(running_tasks(using))
        result.failures.extend(recent_failures(using))
        result.workers.extend(workers_alive(using, now))
    result.queues = sorted(queues.values(), key=lambda q: q.name)
    result.throughput = _buckets(now, minutes)
    result.failures.sort(key=lambda r: r.finished_at or now, reverse=True)
    del result.failures[FAILURES_LIMIT:]
    return result


def queue_stats(now: datetime | None = None) -> list[QueueStats]:
    """Return each queue's active work, over every queue database."""
    now = now or timezone.now()
    queues: dict[str, QueueStats] = {}
    for using in queue_databases():
        _add_active(using, now, queues, {})
    return sorted(queues.values(), key=lambda q: q.name)


def _add_active(
    using: str, now: datetime, queues: dict[str, QueueStats], counts: dict[str, dict[str, int]]
) -> None:
    # One grouped query over active rows only (the claim and lease indexes hold them); the
    # finished rows, however many, are never visited.
    due = Q(state=State.READY, run_after__lte=now)
    rows = (
        TaskRecord.objects.using(using)
        .filter(state__in=ACTIVE_STATES)
        .values("queue_name", "state")
        .annotate(n=Count("id"), due=Count("id", filter=due), oldest=Min("run_after", filter=due))
        .order_by()
    )
    for row in rows:
        stats = queues.setdefault(row["queue_name"], QueueStats(row["queue_name"]))
        state, n = row["state"], row["n"]
        by_queue = counts.setdefault(state, {})
        by_queue[stats.name] = by_queue.get(stats.name, 0) + n
        if state == State.READY:
            stats.due += row["due"]
            stats.waiting += n - row["due"]
            if row["oldest"] is not None and (
                stats.oldest_due_at is None or row["oldest"] < stats.oldest_due_at
            ):
                stats.oldest_due_at = row["oldest"]
        elif state == State.BLOCKED:
            stats.blocked += n
        else:
            stats.running += n


def finished_recently(using: str, since: datetime) -> TaskRecordQuerySet:
    """Tasks that finished since `since`: a range of the (state, finished_at) index."""
    return TaskRecord.objects.using(using).filter(state__in=FINISHED_STATES, finished_at__gte=since)


def _add_finished(
    using: str,
    now: datetime,
    minutes: dict[datetime, dict[str, int]],
    counts: dict[str, dict[str, int]],
) -> None:
    rows = (
        finished_recently(using, now - WINDOW)
        .annotate(minute=TruncMinute("finished_at", tzinfo=UTC))
        .values("minute", "state", "queue_name")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        minutes[row["minute"]][row["state"]] += row["n"]
        by_queue = counts.setdefault(row["state"], {})
        by_queue[row["queue_name"]] = by_queue.get(row["queue_name"], 0) + row["n"]


def _buckets(now: datetime, minutes: dict[datetime, dict[str, int]]) -> list[Bucket]:
    """One bucket per minute of the window, oldest first, empty minutes included."""
    last = now.astimezone(UTC).replace(second=0, microsecond=0)
    count = int(WINDOW / timedelta(minutes=1))
    starts = [last - timedelta(minutes=count - 1 - index) for index in range(count)]
    found = {minute.astimezone(UTC): states for minute, states in minutes.items()}
    return [
        Bucket(
            start=start,
            succeeded=found.get(start, {}).get(State.SUCCEEDED, 0),
            failed=found.get(start, {}).get(State.FAILED, 0),
            cancelled=found.get(start, {}).get(State.CANCELLED, 0),
        )
        for start in starts
    ]


def running_tasks(using: str, limit: int = RUNNING_LIMIT) -> list[TaskRecord]:
    """The running tasks, longest running first, at most `limit`."""
    return list(
        TaskRecord.objects.using(using)
        .filter(state=State.RUNNING)
        .only(*LIST_FIELDS)
        .order_by("last_attempted_at", "id")[:limit]
    )


def recent_failures(using: str, limit: int = FAILURES_LIMIT) -> list[TaskRecord]:
    """The latest failed tasks, newest first, at most `limit`."""
    return list(
        TaskRecord.objects.using(using)
        .filter(state=State.FAILED)
        .only(*LIST_FIELDS)
        .order_by("-finished_at", "-id")[:limit]
    )


def workers_alive(using: str, now: datetime) -> list[Worker]:
    """Workers whose last heartbeat is within one lease of `now`."""
    since = now - timedelta(seconds=get_settings().LEASE_SECONDS)
    return list(
        Worker.objects.using(using).filter(last_heartbeat_at__gte=since).order_by("host", "id")
    )


def all_workers_alive(now: datetime | None = None) -> list[Worker]:
    """Workers alive on every queue database."""
    now = now or timezone.now()
    return [worker for using in queue_databases() for worker in workers_alive(using, now)]


# --- finding tasks (taskmill list) ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFilter:
    """What `taskmill list` asks for; every field narrows the list."""

    states: tuple[str, ...] = ()
    queue_name: str | None = None
    task_path: str | None = None
    since: datetime | None = None
    limit: int = 50


def find_tasks(wanted: TaskFilter) -> list[TaskRecord]:
    """Return matching tasks, newest first, at most `wanted.limit` over all queue databases."""
    found: list[TaskRecord] = []
    order = _order_for(wanted)
    for using in queue_databases():
        found.extend(
            _filtered(TaskRecord.objects.using(using), wanted).order_by(*order)[: wanted.limit]
        )
    # Merge the databases' lists in the same order each was read in.
    fields = [name.lstrip("-") for name in order]
    found.sort(key=lambda record: [getattr(record, name) for name in fields], reverse=True)
    return found[: wanted.limit]


def _filtered(rows: TaskRecordQuerySet, wanted: TaskFilter) -> TaskRecordQuerySet:
    rows = rows.only(*LIST_FIELDS)
    if wanted.states:
        rows = rows.filter(state__in=wanted.states)
    if wanted.queue_name is not None:
        rows = rows.filter(queue_name=wanted.queue_name)
    if wanted.task_path is not None:
        rows = rows.filter(task_path=wanted.task_path)
    if wanted.since is not None:
        # Ids are UUIDv7, ordered by creation time: "enqueued since" is a primary key range.
        rows = rows.filter(id__gte=first_id_at(wanted.since))
    return rows


def _order_for(wanted: TaskFilter) -> tuple[str, ...]:
    """An order the filter's index can deliver, so LIMIT stops the scan early."""
    if wanted.task_path is not None:
        return ("-enqueued_at", "-id")  # taskmill_path_idx
    if wanted.states and set(wanted.states) <= set(FINISHED_STATES):
        return ("-finished_at", "-id")  # taskmill_finished_idx
    return ("-id",)  # ids sort by enqueue time


def first_id_at(moment: datetime) -> uuid.UUID:
    """The smallest UUIDv7 a task enqueued at `moment` (or later) can have."""
    unix_ms = int(moment.timestamp() * 1000)
    return uuid.UUID(int=(unix_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76)
