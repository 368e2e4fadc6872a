"""Admin for task results: the list with its filters and actions, and the detail page's fields.

Nothing here saves a row: cancel and retry go through operations.py (see actions.py), the
page's buttons and live log are views of task_page.py, delete is Django's, for finished tasks.
"""

from __future__ import annotations

from typing import Any, Final

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import quote
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
)
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..masking import shown_arguments
from ..models import TaskRecord
from ..output import LogReader
from ..presentation import duration_text
from ..states import FINISHED_STATES, is_finished
from .actions import cancel_records, retry_records
from .display import EMPTY, errors_block, log_block, pretty_json, progress_bar, state_badge
from .filters import EnqueuedWithinFilter, QueueFilter, TaskPathFilter
from .live import format_cursor
from .paging import CappedPaginator
from .task_page import TaskPageAdmin

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
            "handed_back_display",
            "owner_display",
            "retry_of_display",
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
            "duration_display",
            "expires_at",
        ),
    ),
    ("Call", ("args_display", "kwargs_display", "options_display")),
    ("Outcome", ("progress_display", "return_value_display", "errors_display")),
    ("Dependencies", ("dependencies_display", "dependants_display")),
    ("Output", ("log_display",)),
)


@admin.register(TaskRecord)
class TaskRecordAdmin(TaskPageAdmin):
    list_display = (
        "id",
        "task_path",
        "state_display",
        "queue_name",
        "priority",
        "owner_display",
        "enqueued_at",
        "started_at",
        "finished_at",
        "duration_display",
        "attempts",
        "progress_display",
    )
    list_filter = ("state", QueueFilter, TaskPathFilter, EnqueuedWithinFilter)
    # "=id": an exact match on the primary key (a term that isn't an id is skipped).
    search_fields = ("=id", "task_path")
    # Served by taskmill_enqueued_idx: a page is a short range of the index.
    ordering = ("-enqueued_at", "-id")
    # Counting millions of rows on every page view is the slow part: the paginator counts at
    # most paging.CAP rows, and neither the total nor the filters' facets are counted.
    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions = ("cancel_selected", "retry_selected", "delete_selected")
    fieldsets = tuple((title, {"fields": fields}) for title, fields in DETAIL_SECTIONS)
    readonly_fields = tuple(name for _, fields in DETAIL_SECTIONS for name in fields)

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskRecord]:
        return super().get_queryset(request).select_related("content_type")

    # --- permissions ---------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tasks are enqueued by code

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # state changes only through the actions

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A queued or running task is cancelled, not deleted from under its worker.
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or is_finished(obj.state))

    # --- actions ---------------------------------------------------------------------------

    @admin.action(description="Cancel selected tasks", permissions=["cancel"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[TaskRecord]) -> None:
        cancel_records(self, request, queryset)

    @admin.action(description="Retry selected failed or cancelled tasks", permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[TaskRecord]) -> None:
        retry_records(self, request, queryset)

    @admin.action(description="Delete selected finished tasks", permissions=["delete"])
    def delete_selected(
        self, request: HttpRequest, queryset: QuerySet[TaskRecord]
    ) -> TemplateResponse | None:
        # Named like Django's action, whose confirmation page posts this name back.
        active = queryset.exclude(state__in=FINISHED_STATES).count()
        if active and request.POST.get("post"):
            self.message_user(
                request,
                f"{active} queued or running task(s) were not deleted: cancel them first.",
                messages.WARNING,
            )
        finished = queryset.filter(state__in=FINISHED_STATES)
        return django_delete_selected(self, request, finished)

    # --- columns and fields ---------------------------------------------------------------

    @admin.display(description="state", ordering="state")
    def state_display(self, record: TaskRecord) -> SafeString:
        return state_badge(record.state)

    @admin.display(description="progress")
    def progress_display(self, record: TaskRecord) -> SafeString:
        return format_html(
            '<span class="taskmill-progress">{}</span>', progress_bar(record.get_progress())
        )

    @admin.display(description="duration")
    def duration_display(self, record: TaskRecord) -> str:
        return duration_text(record.duration) if record.duration is not None else EMPTY

    @admin.display(description="object")
    def owner_display(self, record: TaskRecord) -> SafeString | str:
        content_type = record.content_type
        if content_type is None:
            return EMPTY
        label = f"{content_type.app_label}.{content_type.model} {record.object_id}"
        try:
            url = reverse(
                f"{self.admin_site.name}:{content_type.app_label}_{content_type.model}_change",
                args=[quote(record.object_id or "")],
            )
        except NoReverseMatch:  # the owner's model has no admin page here
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="args")
    def args_display(self, record: TaskRecord) -> SafeString:
        return pretty_json(shown_arguments(record.args))

    @admin.display(description="kwargs")
    def kwargs_display(self, record: TaskRecord) -> SafeString:
        return pretty_json(shown_arguments(record.kwargs))

    @admin.display(description="options")
    def options_display(self, record: TaskRecord) -> SafeString:
        return pretty_json(record.options)

    @admin.display(description="return value")
    def return_value_display(self, record: TaskRecord) -> SafeString:
        return pretty_json(record.return_value)

    @admin.display(description="errors")
    def errors_display(self, record: TaskRecord) -> SafeString | str:
        return errors_block(record.errors)

    @admin.display(description="handed back")
    def handed_back_display(self, record: TaskRecord) -> SafeString | str:
        if not record.handed_back:
            return EMPTY
        return format_html_join(
            "",
            "<p>attempt {} by {} at {}</p>",
            ((n["attempt"], n["worker_id"], n["handed_back_at"]) for n in record.handed_back),
        )

    @admin.display(description="retry of")
    def retry_of_display(self, record: TaskRecord) -> SafeString | str:
        if record.retry_of_id is None:
            return EMPTY
        return format_html(
            '<a href="{}">{}</a>', self._change_url(record.retry_of_id), record.retry_of_id
        )

    @admin.display(description="depends on")
    def dependencies_display(self, record: TaskRecord) -> SafeString | str:
        return self._links(record.dependencies.order_by("enqueued_at", "id"))

    @admin.display(description="dependants")
    def dependants_display(self, record: TaskRecord) -> SafeString | str:
        return self._links(record.dependants.order_by("enqueued_at", "id"))

    @admin.display(description="captured output")
    def log_display(self, record: TaskRecord) -> SafeString | str:
        reader = LogReader.of(record)
        lines = reader.poll()
        unfinished = reader.flush()  # lines whose newline hasn't been stored yet
        lines += unfinished
        omitted = max(len(lines) - LOG_LINES_SHOWN, 0)
        live = None
        # Decided on the state the page shows (read with the row), not the reader's newer
        # one: if the task ended in between, the script's first poll says so and reloads.
        if not is_finished(record.state):
            # The page's script asks for what comes after the last chunk read here.
            live = {
                "cursor": format_cursor(reader.cursor),
                "url": reverse(
                    f"{self.admin_site.name}:taskmill_taskrecord_log", args=[quote(record.pk)]
                ),
            }
        if live is None:
            unfinished = []
        return log_block(lines[omitted:], omitted=omitted, live=live, unfinished=unfinished)

    def _links(self, records: QuerySet[TaskRecord]) -> SafeString | str:
        rows = list(records.only("id", "task_path", "state"))
        if not rows:
            return EMPTY
        return format_html_join(
            "",
            '<div><a href="{}">{}</a> {} {}</div>',
            (
                (self._change_url(row.pk), row.id, row.task_path, state_badge(row.state))
                for row in rows
            ),
        )
