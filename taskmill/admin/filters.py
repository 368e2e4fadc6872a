"""The task list's filters, each cheap on a table of millions of rows.

Django's field filters list their choices with `SELECT DISTINCT` over the whole table; these
take their choices from the newest rows (an index range) and the settings instead.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ..models import TaskRecord

# Choices for the task and queue filters come from this many newest rows (and the settings).
RECENT_ROWS: Final = 1000

WITHIN: Final[dict[str, tuple[str, timedelta]]] = {
    "hour": ("in the last hour", timedelta(hours=1)),
    "day": ("in the last 24 hours", timedelta(days=1)),
    "week": ("in the last 7 days", timedelta(days=7)),
    "month": ("in the last 30 days", timedelta(days=30)),
}


def recent_values(queryset: QuerySet[TaskRecord], field: str) -> list[str]:
    """Return the distinct values of `field` among the newest rows, sorted."""
    # Read in the list's own order, so the taskmill_enqueued_idx range serves it.
    newest = queryset.order_by("-enqueued_at", "-id").values_list(field, flat=True)
    return sorted(set(newest[:RECENT_ROWS]))


class EnqueuedWithinFilter(admin.SimpleListFilter):
    title = "enqueued"
    parameter_name = "enqueued"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in WITHIN.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        chosen = WITHIN.get(str(self.value()))
        if chosen is None:
            return queryset
        return queryset.filter(enqueued_at__gte=timezone.now() - chosen[1])


class _RecentValuesFilter(admin.SimpleListFilter):
    field: str

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        values = set(recent_values(model_admin.get_queryset(request), self.field))
        chosen = self.value()
        if chosen:
            values.add(str(chosen))  # stays listed even when only older rows have it
        return [(value, value) for value in sorted(values)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        chosen = self.value()
        return queryset.filter(**{self.field: chosen}) if chosen else queryset


class TaskPathFilter(_RecentValuesFilter):
    title = "task"
    parameter_name = "task"
    field = "task_path"


class QueueFilter(_RecentValuesFilter):
    title = "queue"
    parameter_name = "queue"
    field = "queue_name"
