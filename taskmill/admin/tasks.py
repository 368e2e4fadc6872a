"""Admin for task results: a read-only list and detail page of TaskRecord rows.

Read-only on purpose: state changes go through operations.py (cancel, retry), which later
admin actions will call; nothing here saves a row.
"""

from __future__ import annotations

from typing import Any, Final

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from ..models import TaskRecord
from .display import EMPTY, errors_block, log_block, pretty_json, progress_bar, state_badge

# The detail page shows the end of a long log; the command line prints all of it.
LOG_LINES_SHOWN: Final = 2000


# The detail page's sections: every entry is a model field or a *_display method below.
DETAIL_SECTIONS: Final[tuple[tuple[str | None, tuple[str, ...]], ...]] = (
    (
        None,
        (
            "id",
            "task_path",
            "state_display",
            "backend",
            "queue_name",
            "priority",
            "attempts",
            "worker_ids",
            "owner_display",
        ),
    ),
    (
        "Times",
        (
            "enqueued_at",
            "run_after",
            "started_at",
            "last_attempted_at",
            "finished_at",
            "duration",
            "expires_at",
        ),
    ),
    ("Call", ("args_display", "kwargs_display", "options_display")),
    ("Outcome", ("progress_display", "return_value_display", "errors_display")),
    ("Dependencies", ("dependencies_display", "dependants_display")),
    ("Output", ("log_display",)),
)


class ReadOnlyAdminMixin:
    """Viewing only: no add, change or delete through the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TaskRecord)
class TaskRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    list_display = (
        "id",
        "task_path",
        "state_display",
        "queue_name",
        "attempts",
        "enqueued_at",
        "started_at",
        "finished_at",
        "progress_display",
    )
    list_filter = ("state", "queue_name")
    # "=id": an exact match on the primary key (a term that isn't an id is skipped).
    search_fields = ("=id", "task_path")
    ordering = ("-enqueued_at", "-id")
    # Counting millions of finished rows on every page view is the slow part; skip it.
    show_full_result_count = False
    list_per_page = 50
    fieldsets = tuple((title, {"fields": fields}) for title, fields in DETAIL_SECTIONS)
    readonly_fields = tuple(name for _, fields in DETAIL_SECTIONS for name in fields)

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskRecord]:
        return super().get_queryset(request).select_related("content_type")

    @admin.display(description="state", ordering="state")
    def state_display(self, record: TaskRecord) -> SafeString:
        return state_badge(record.state)

    @admin.display(description="progress")
    def progress_display(self, record: TaskRecord) -> SafeString | str:
        return progress_bar(record.get_progress())

    @admin.display(description="object")
    def owner_display(self, record: TaskRecord) -> str:
        if record.content_type is None:
            return EMPTY
        return f"{record.content_type.app_label}.{record.content_type.model} {record.object_id}"

    @admin.display(description="args")
    def args_display(self, record: TaskRecord) -> SafeString:
        return pretty_json(record.args)

    @admin.display(description="kwargs")
    def kwargs_display(self, record: TaskRecord) -> SafeString:
        return pretty_json(record.kwargs)

    @admin.display(description="options")
    def options_display(self, record: TaskRecord) -> SafeString:
        return pretty_json(record.options)

    @admin.display(description="return value")
    def return_value_display(self, record: TaskRecord) -> SafeString:
        return pretty_json(record.return_value)

    @admin.display(description="errors")
    def errors_display(self, record: TaskRecord) -> SafeString | str:
        return errors_block(record.errors)

    @admin.display(description="depends on")
    def dependencies_display(self, record: TaskRecord) -> SafeString | str:
        return self._links(record.dependencies.order_by("enqueued_at", "id"))

    @admin.display(description="dependants")
    def dependants_display(self, record: TaskRecord) -> SafeString | str:
        return self._links(record.dependants.order_by("enqueued_at", "id"))

    @admin.display(description="captured output")
    def log_display(self, record: TaskRecord) -> SafeString | str:
        lines = record.logs()
        omitted = max(len(lines) - LOG_LINES_SHOWN, 0)
        return log_block(lines[omitted:], omitted=omitted)

    def _links(self, records: QuerySet[TaskRecord]) -> SafeString | str:
        rows = list(records.only("id", "task_path", "state"))
        if not rows:
            return EMPTY
        return format_html_join(
            "",
            '<div><a href="{}">{}</a> {} {}</div>',
            (
                (
                    reverse(f"{self.admin_site.name}:taskmill_taskrecord_change", args=[row.pk]),
                    row.id,
                    row.task_path,
                    state_badge(row.state),
                )
                for row in rows
            ),
        )
