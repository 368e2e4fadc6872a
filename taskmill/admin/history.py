"""Per-object task history on a model's admin page: the tasks enqueued with for_object=obj.

from taskmill.admin import TaskHistoryInline

class ArticleAdmin(admin.ModelAdmin):
    inlines = [TaskHistoryInline]
"""

from __future__ import annotations

from typing import Any, Final

from django.contrib import admin
from django.contrib.contenttypes.admin import GenericTabularInline
from django.contrib.contenttypes.forms import BaseGenericInlineFormSet
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import TaskRecord
from .display import ReadOnlyAdminMixin, progress_bar, state_badge

HISTORY_LIMIT: Final = 20


class LatestTasksFormSet(BaseGenericInlineFormSet):  # type: ignore[type-arg]  # generic only in the stubs
    """The object's newest tasks only: the slice is taken after the object's filter."""

    limit = HISTORY_LIMIT

    def get_queryset(self) -> QuerySet[TaskRecord]:
        if not hasattr(self, "_latest"):
            queryset = super().get_queryset().order_by("-enqueued_at", "-id")
            self._latest: QuerySet[TaskRecord] = queryset[: self.limit]
        return self._latest


class TaskHistoryInline(ReadOnlyAdminMixin, GenericTabularInline):
    """The last tasks enqueued for the object (newest first), each linking to its page."""

    model = TaskRecord
    formset = LatestTasksFormSet  # type: ignore[assignment]  # the stubs disagree among themselves
    ct_field = "content_type"
    ct_fk_field = "object_id"
    fields = (
        "task_link",
        "task_path",
        "state_display",
        "enqueued_at",
        "finished_at",
        "progress_display",
    )
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False  # task_link already leads to the task's page
    verbose_name = "task"
    verbose_name_plural = f"task history (latest {HISTORY_LIMIT})"

    @staticmethod
    def _change_url(site_name: str, record: TaskRecord) -> str | None:
        try:
            return reverse(f"{site_name}:taskmill_taskrecord_change", args=[record.pk])
        except NoReverseMatch:  # TaskRecord isn't registered on this admin site
            return None

    @admin.display(description="task")
    def task_link(self, record: TaskRecord) -> SafeString | str:
        url = self._change_url(self.admin_site.name, record)
        return str(record.id) if url is None else format_html('<a href="{}">{}</a>', url, record.id)

    @admin.display(description="state")
    def state_display(self, record: TaskRecord) -> SafeString:
        return state_badge(record.state)

    @admin.display(description="progress")
    def progress_display(self, record: TaskRecord) -> SafeString | str:
        return progress_bar(record.get_progress())


class TaskHistoryMixin:
    """Add TaskHistoryInline to a ModelAdmin, after its own inlines."""

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        inlines = list(super().get_inlines(request, obj))  # type: ignore[misc]  # a ModelAdmin's
        return [*inlines, TaskHistoryInline] if obj is not None else inlines
