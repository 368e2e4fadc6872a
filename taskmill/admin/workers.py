"""Admin for workers: who runs where, whether it still heartbeats, and what it runs now.

Read-only: workers write their own rows. "stale" means no heartbeat for longer than a lease
(LEASE_SECONDS); its running tasks are rescued once their leases expire.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..conf import get_settings
from ..models import TaskRecord, Worker
from ..presentation import ago_text
from ..states import State
from .display import EMPTY, ReadOnlyAdminMixin

FIELDS = (
    "id",
    "backend",
    "host",
    "pid",
    "queues_display",
    "concurrency",
    "started_at",
    "last_heartbeat_at",
    "health",
    "stopping",
    "current_tasks",
)


def is_alive(worker: Worker) -> bool:
    """Tell whether the worker heartbeat within the last lease."""
    lease = timedelta(seconds=get_settings().LEASE_SECONDS)
    return timezone.now() - worker.last_heartbeat_at <= lease


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    list_display = (
        "id",
        "host",
        "pid",
        "queues_display",
        "concurrency",
        "started_at",
        "last_heartbeat_at",
        "health",
        "current_tasks",
    )
    list_filter = ("host", "backend")
    search_fields = ("id", "host")
    ordering = ("-last_heartbeat_at", "id")
    readonly_fields = FIELDS
    fields = FIELDS

    @admin.display(description="queues")
    def queues_display(self, worker: Worker) -> str:
        return ", ".join(str(name) for name in worker.queues) or "all"

    @admin.display(description="heartbeat")
    def health(self, worker: Worker) -> SafeString:
        alive = is_alive(worker)
        return format_html(
            '<span class="taskmill-worker-{}" style="color: {};">{}</span> ({})',
            "alive" if alive else "stale",
            "#198754" if alive else "#dc3545",
            "alive" if alive else "stale",
            ago_text(worker.last_heartbeat_at, timezone.now()),
        )

    @admin.display(description="current tasks")
    def current_tasks(self, worker: Worker) -> SafeString | str:
        # One query per worker shown, served by the partial index over running rows
        # (taskmill_lease_idx); workers are few.
        running = list(
            TaskRecord.objects.using(worker._state.db)
            .filter(state=State.RUNNING, lease_owner=worker.id)
            .only("id", "task_path")
            .order_by("started_at", "id")
        )
        if not running:
            return EMPTY
        return format_html_join(
            "",
            '<div><a href="{}">{}</a> {}</div>',
            ((self._url(r), r.id, r.task_path) for r in running),
        )

    def _url(self, record: TaskRecord) -> str:
        try:
            return reverse(
                f"{self.admin_site.name}:taskmill_taskrecord_change", args=[quote(record.pk)]
            )
        except NoReverseMatch:
            return "#"
