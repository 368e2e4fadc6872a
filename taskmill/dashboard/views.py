"""Dashboard views: staff with permission to view tasks see the overview; it refreshes itself by
fetching its panels again (same URL, `?panels=1`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from .. import stats
from ..models import TaskRecord
from ..presentation import ago_text, duration_text, last_error_line, progress_fraction
from ..states import State
from .charts import BarChart, bar_chart

VIEW_PERMISSION: Final = "taskmill.view_taskrecord"
REFRESH_SECONDS: Final = 5
REFRESH_RANGE: Final = range(1, 3601)

type View = Callable[[HttpRequest], HttpResponse]


def viewer_required(view: View) -> View:
    """Let staff with the view-tasks permission in; send others to the admin login."""

    def check(request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(VIEW_PERMISSION):
            raise PermissionDenied("Viewing Taskmill's dashboard needs taskmill.view_taskrecord.")
        return view(request)

    check.__name__ = view.__name__
    check.__doc__ = view.__doc__
    return staff_member_required(check)


def task_admin_url(task_id: object) -> str | None:
    """The task's admin change page, or None where the admin for tasks isn't installed."""
    try:
        return reverse("admin:taskmill_taskrecord_change", args=[str(task_id)])
    except NoReverseMatch:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRow:
    """A task as a line of the dashboard: what it is, where to see it, how far it got."""

    id: str
    url: str | None
    task_path: str
    queue_name: str
    attempts: int
    when: str
    percent: int | None
    message: str

    @classmethod
    def running(cls, record: TaskRecord, now: datetime) -> TaskRow:
        fraction = progress_fraction(record.progress)
        message = record.progress.get("message", "") if isinstance(record.progress, dict) else ""
        started = record.last_attempted_at or record.started_at
        return cls(
            id=str(record.id),
            url=task_admin_url(record.id),
            task_path=record.task_path,
            queue_name=record.queue_name,
            attempts=record.attempts,
            when=duration_text(now - started) if started else "-",
            percent=None if fraction is None else round(fraction * 100),
            message=str(message),
        )

    @classmethod
    def failed(cls, record: TaskRecord, now: datetime) -> TaskRow:
        return cls(
            id=str(record.id),
            url=task_admin_url(record.id),
            task_path=record.task_path,
            queue_name=record.queue_name,
            attempts=record.attempts,
            when=ago_text(record.finished_at, now),
            percent=None,
            message=last_error_line(record.errors),
        )


def _charts(overview: stats.Overview) -> dict[str, BarChart]:
    def label(bucket: stats.Bucket) -> str:
        return bucket.start.strftime("%H:%M")

    return {
        "finished": bar_chart(
            [(label(b), b.succeeded + b.failed + b.cancelled) for b in overview.throughput]
        ),
        "failed": bar_chart([(label(b), b.failed) for b in overview.throughput]),
    }


def _count_table(overview: stats.Overview) -> dict[str, Any]:
    queues = sorted({queue for by_queue in overview.counts.values() for queue in by_queue})
    return {
        "states": [state.value for state in State],
        "rows": [
            (queue, [overview.counts.get(state, {}).get(queue, 0) for state in State])
            for queue in queues
        ],
        "totals": list(overview.state_totals().items()),
    }


def dashboard_context(overview: stats.Overview) -> dict[str, Any]:
    """The template context of the dashboard's panels."""
    now = overview.now
    return {
        "overview": overview,
        "counts": _count_table(overview),
        "charts": _charts(overview),
        "window_minutes": int(stats.WINDOW.total_seconds() // 60),
        "queues": [
            {"stats": queue, "oldest_wait": duration_text(queue.oldest_wait(now))}
            for queue in overview.queues
        ],
        "running": [TaskRow.running(record, now) for record in overview.running],
        "failures": [TaskRow.failed(record, now) for record in overview.failures],
        "workers": [
            {"worker": worker, "beat": ago_text(worker.last_heartbeat_at, now)}
            for worker in overview.workers
        ],
    }


@viewer_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The dashboard page; with `?panels=1`, only its panels (what the page refreshes)."""
    context = dashboard_context(stats.overview())
    if request.GET.get("panels"):
        return TemplateResponse(request, "taskmill/dashboard/_panels.html", context)
    context.update(
        admin.site.each_context(request),
        title="Taskmill dashboard",
        refresh_seconds=_refresh_seconds(request),
        refresh_url=f"{request.path}?panels=1",
    )
    return TemplateResponse(request, "taskmill/dashboard/index.html", context)


def _refresh_seconds(request: HttpRequest) -> int:
    """`?refresh=N` sets the refresh interval (1 to 3600 seconds); the default is 5."""
    given = request.GET.get("refresh", "")
    if given.isdigit() and int(given) in REFRESH_RANGE:
        return int(given)
    return REFRESH_SECONDS
