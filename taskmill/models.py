"""Taskmill's tables: task records, their logs and dependency links, schedules, workers.

Models hold data; the worker's logic lives in queue/ and worker/. Querysets only read.
"""

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.db.models.base import ModelState

from .codec import ExactJSONEncoder, TolerantJSONDecoder
from .ids import new_task_id
from .queue.indexes import PartialIndex, PartialUnique
from .states import ACTIVE_STATES, FINISHED_STATES, State, to_django_status

if TYPE_CHECKING:
    from django.tasks import TaskResultStatus

    from .output import LogLine, Progress


class TaskRecordQuerySet(models.QuerySet["TaskRecord"]):
    def active(self) -> "TaskRecordQuerySet":
        return self.filter(state__in=ACTIVE_STATES)

    def finished(self) -> "TaskRecordQuerySet":
        return self.filter(state__in=FINISHED_STATES)

    def for_object(self, instance: models.Model) -> "TaskRecordQuerySet":
        content_type = ContentType.objects.db_manager(self.db).get_for_model(instance)
        return self.filter(content_type=content_type, object_id=str(instance.pk))


class TaskRecord(models.Model):
    """One task result: what to run, its state, and what happened on each attempt."""

    id = models.UUIDField(primary_key=True, default=new_task_id, editable=False)
    backend = models.CharField(max_length=100)
    task_path = models.CharField(max_length=255)
    queue_name = models.CharField(max_length=100)
    priority = models.SmallIntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.READY)
    # User data: written by ExactJSONEncoder so every database gives it back unchanged. Every
    # JSON column reads through TolerantJSONDecoder: a row MariaDB took but Python can't read
    # fails alone (row_checks) instead of stopping the worker that reads it.
    args = models.JSONField(default=list, encoder=ExactJSONEncoder, decoder=TolerantJSONDecoder)
    kwargs = models.JSONField(default=dict, encoder=ExactJSONEncoder, decoder=TolerantJSONDecoder)
    options = models.JSONField(default=dict, decoder=TolerantJSONDecoder)  # task.StoredOptions

    enqueued_at = models.DateTimeField()
    # NOT NULL, defaulting to the enqueue time, so "is it due" and the claim order need no
    # sentinel values on any database.
    run_after = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # pruned after this

    attempts = models.PositiveIntegerField(default=0)
    worker_ids = models.JSONField(default=list, decoder=TolerantJSONDecoder)
    # A list of results.StoredError.
    errors = models.JSONField(default=list, decoder=TolerantJSONDecoder)
    # Attempts a graceful shutdown stopped part-way: not counted in attempts or worker_ids, but
    # they ran, so their side effects are accounted for (list of results.StoredHandBack).
    handed_back = models.JSONField(default=list, decoder=TolerantJSONDecoder)
    return_value = models.JSONField(
        null=True, blank=True, encoder=ExactJSONEncoder, decoder=TolerantJSONDecoder
    )
    # Filled by the long-task features.
    progress = models.JSONField(null=True, blank=True, decoder=TolerantJSONDecoder)

    # The lease: who runs the current attempt and until when it is theirs (database clock).
    lease_owner = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - no lease is NULL, not ""
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    # The foreign keys have no index of their own: each leads one of Meta's, partial where the
    # database allows, so the many rows without one cost no index entry (see Meta.indexes).
    content_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    object_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - pairs with a NULL content_type
    owner = GenericForeignKey("content_type", "object_id")

    # Set while the task is queued or running and cleared when it finishes, so the unique
    # index (taskmill_unique_key; NULLs never collide) holds only among active tasks.
    unique_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL: no key
    # Set (under the row's lock) when a dependant is linked, so finishing a task that nobody
    # waits for costs no query about dependants.
    has_dependants = models.BooleanField(default=False)
    dependencies = models.ManyToManyField(
        "self", through="TaskDependency", symmetrical=False, related_name="dependants"
    )
    retry_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retries",
        db_index=False,
    )
    # A periodic or cron run: which schedule and which due time. Unique together (NULLs never
    # collide), the last line of defence that makes each due time enqueued once. Unlike
    # unique_key, never cleared.
    schedule = models.ForeignKey(
        "Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        db_index=False,
    )
    scheduled_for = models.DateTimeField(null=True, blank=True)

    objects = TaskRecordQuerySet.as_manager()

    class Meta:
        verbose_name = "task"
        indexes: ClassVar[list[Any]] = [
            # The claim query: ready rows, highest priority first, then oldest due.
            PartialIndex(
                fields=["-priority", "run_after", "id"],
                condition=Q(state=State.READY),
                fallback_prefix=("state",),
                name="taskmill_claim_idx",
            ),
            PartialIndex(
                fields=["lease_expires_at"],
                condition=Q(state=State.RUNNING),
                fallback_prefix=("state",),
                name="taskmill_lease_idx",
            ),
            # PostgreSQL writes an entry in every index on each insert and on each update that
            # changes a state (claim, finish): those that only some rows need are partial, so a
            # plain task's row writes five index entries each time, not thirteen. A foreign
            # key's lookups (`= value`) imply IS NOT NULL, so the partial indexes serve them;
            # MariaDB, without partial indexes, gets them whole, as its foreign keys need.
            PartialIndex(
                fields=["expires_at"],
                condition=Q(expires_at__isnull=False),
                name="taskmill_expires_idx",
            ),
            PartialIndex(
                fields=["content_type", "object_id", "-enqueued_at"],
                condition=Q(content_type__isnull=False),
                name="taskmill_owner_idx",
            ),
            PartialIndex(
                fields=["retry_of"],
                condition=Q(retry_of__isnull=False),
                name="taskmill_retry_of_idx",
            ),
            models.Index(fields=["task_path", "-enqueued_at"], name="taskmill_path_idx"),
            # The admin's task list, newest first: a page is a short range of this index, however
            # many millions of rows the table holds.
            models.Index(fields=["-enqueued_at", "-id"], name="taskmill_enqueued_idx"),
            # Monitoring: work finished lately (dashboard, metrics, `taskmill list --since`)
            # and the newest failures read a range of this index, never the whole table.
            models.Index(fields=["state", "finished_at"], name="taskmill_finished_idx"),
        ]
        constraints: ClassVar[list[Any]] = [
            PartialUnique(
                fields=["unique_key"],
                condition=Q(unique_key__isnull=False),
                name="taskmill_unique_key",
            ),
            PartialUnique(
                fields=["schedule", "scheduled_for"],
                condition=Q(schedule__isnull=False),
                name="taskmill_schedule_due_unique",
            ),
        ]
        permissions = (
            ("cancel_task", "Can cancel tasks"),
            ("retry_task", "Can retry tasks"),
        )

    def __str__(self) -> str:
        return f"{self.task_path} [{self.state}] {self.id}"

    # Read-only conveniences for rows from taskmill.history() and the admin; the queue's
    # logic never uses them.

    @property
    def status(self) -> "TaskResultStatus":
        """Django's status for this row (blocked and ready are both READY)."""
        return to_django_status(self.state)

    @property
    def duration(self) -> timedelta | None:
        """Time from the first start to the end; None until the task has started and ended."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def get_progress(self) -> "Progress | None":
        """Return the progress stored on this row, or None if the task reported none."""
        from .output import Progress

        return Progress.from_stored(self.progress)

    def logs(self) -> "list[LogLine]":
        """Return the task's captured output as lines, read now from this row's database."""
        from .output import LogReader

        return LogReader.of(self).read_all()


@cache
def record_columns() -> frozenset[str]:
    """The attribute names of TaskRecord's columns (a foreign key's is `<name>_id`)."""
    return frozenset(field.attname for field in TaskRecord._meta.concrete_fields)


def build_record(columns: dict[str, Any], *, database: str | None = None) -> TaskRecord:
    """Return a TaskRecord holding these column values, given by attribute name, every column
    once: read from `database` (as Model.from_db would make it), or unsaved without one.

    For the worker's copies of the rows it claims and finishes, thousands a second:
    Model.__init__ costs three times as much. Unlike __init__ (and like copy.copy()), it sends
    no pre_init or post_init signal. Raise ValueError unless every column has a value: a
    missing one would be read lazily from the database, by a query, on first access.
    """
    if columns.keys() != record_columns():
        missing = sorted(record_columns() - columns.keys())
        unknown = sorted(columns.keys() - record_columns())
        raise ValueError(f"TaskRecord columns missing {missing}, unknown {unknown}")
    record = TaskRecord.__new__(TaskRecord)
    state = ModelState()
    if database is not None:
        state.adding = False
        state.db = database
    record._state = state
    record.__dict__.update(columns)
    return record


class Dashboard(TaskRecord):
    """No table of its own: the admin index lists it, so the dashboard is one click from there."""

    class Meta:
        proxy = True
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"


class TaskDependency(models.Model):
    """An edge: `dependant` may run only after `dependency` succeeded."""

    dependant = models.ForeignKey(
        TaskRecord, on_delete=models.CASCADE, related_name="dependency_links"
    )
    dependency = models.ForeignKey(
        TaskRecord, on_delete=models.CASCADE, related_name="dependant_links"
    )

    class Meta:
        verbose_name = "task dependency"
        verbose_name_plural = "task dependencies"
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["dependant", "dependency"], name="taskmill_dependency_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.dependant_id} after {self.dependency_id}"


class LogStream(models.TextChoices):
    STDOUT = "stdout", "stdout"
    STDERR = "stderr", "stderr"
    LOG = "log", "logging"
    MARKER = "marker", "marker"  # e.g. "output truncated"


class LogChunk(models.Model):
    """A batch of output one attempt of a task wrote, in order (seq) within the attempt."""

    task = models.ForeignKey(TaskRecord, on_delete=models.CASCADE, related_name="log_chunks")
    # Numbered per attempt, so writing output never needs to read what earlier attempts
    # (or a worker whose lease expired) stored.
    attempt = models.PositiveIntegerField()
    seq = models.PositiveIntegerField()
    stream = models.CharField(max_length=6, choices=LogStream.choices)
    text = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "log chunk"
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["task", "attempt", "seq"], name="taskmill_logchunk_seq_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.task_id}#{self.seq} {self.stream}"


class CatchUp(models.TextChoices):
    ONCE = "once", "Run once for the missed period"
    SKIP = "skip", "Skip missed runs"


class Schedule(models.Model):
    """A periodic or cron schedule that enqueues a task at each due time.

    Rows are synced from code and the SCHEDULE setting at worker start; the leader advances
    last_due_at/next_due_at.
    """

    name = models.CharField(max_length=200, unique=True)
    backend = models.CharField(max_length=100, default="default")
    task_path = models.CharField(max_length=255)
    args = models.JSONField(default=list, encoder=ExactJSONEncoder)
    kwargs = models.JSONField(default=dict, encoder=ExactJSONEncoder)
    cron = models.CharField(max_length=200, blank=True, default="")
    interval_seconds = models.FloatField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    catch_up = models.CharField(max_length=4, choices=CatchUp.choices, default=CatchUp.ONCE)
    enabled = models.BooleanField(default=True)
    # The last due time enqueued: advanced with a compare-and-set in the same transaction
    # as the enqueue, which makes each due time run once whatever the number of leaders.
    last_due_at = models.DateTimeField(null=True, blank=True)
    next_due_at = models.DateTimeField(null=True, blank=True)
    # False once the schedule is no longer declared in code or settings (it is then disabled).
    in_code = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "schedule"
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["backend", "enabled", "next_due_at"], name="taskmill_due_idx")
        ]

    def __str__(self) -> str:
        return self.name


class Leadership(models.Model):
    """Which worker leads a backend (runs its scheduler and pruner) and until when.

    Taken and renewed with a compare-and-set on the database's clock (queue/leader.py).
    """

    name = models.CharField(max_length=100, primary_key=True)
    worker_id = models.CharField(max_length=64)
    # Incremented each time another worker takes over: the fence between terms.
    term = models.PositiveBigIntegerField(default=1)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = "leadership"

    def __str__(self) -> str:
        return f"{self.name}: {self.worker_id} (term {self.term})"


class Worker(models.Model):
    """A running (or lately running) worker supervisor and its heartbeat."""

    id = models.CharField(max_length=64, primary_key=True)
    backend = models.CharField(max_length=100)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list)
    concurrency = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_heartbeat_at = models.DateTimeField()
    stopping = models.BooleanField(default=False)

    class Meta:
        verbose_name = "worker"
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["last_heartbeat_at"], name="taskmill_worker_beat_idx")
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.host}:{self.pid})"
