"""Admin for task results: the list, the detail page with its live log, and the actions.

Nothing here saves a row: cancel and retry go through operations.py (see actions.py); delete is
Django's, for finished tasks only.
"""

from __future__ import annotations

from typing import Any, Final

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from ..models import TaskRecord
from ..operations import RETRYABLE_STATES
from ..output import LogReader
from ..presentation import duration_text
from ..states import FINISHED_STATES, is_finished
from .actions import CANCEL_PERMISSION, RETRY_PERMISSION, cancel_records, retry_records
from .display import EMPTY, errors_block, log_block, pretty_json, progress_bar, state_badge
from .filters import EnqueuedWithinFilter, QueueFilter, TaskPathFilter
from .live import format_cursor, log_since, parse_cursor
from .paging import CappedPaginator

# The detail page shows the end of a long log; the command line prints all of it.
LOG_LINES_SHOWN: Final = 2000
# How often the task page asks for new output while the task runs.
LIVE_POLL_MS: Final = 1000


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
class TaskRecordAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
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

    def has_cancel_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm(CANCEL_PERMISSION))

    def has_retry_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm(RETRY_PERMISSION))

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

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Django ignores an action the user may not run; a POST naming one is refused outright.
        action = request.POST.get("action") if request.method == "POST" else None
        if action in self.actions and action not in self.get_actions(request):
            raise PermissionDenied(f"Running {action!r} needs a permission this user lacks.")
        return super().changelist_view(request, extra_context)

    # --- the detail page's buttons and live log ----------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/log/",
                wrap(self.log_view),
                name="{}_{}_log".format(*info),
            ),
            path(
                "<path:object_id>/cancel/",
                wrap(require_POST(self.cancel_view)),
                name="{}_{}_cancel".format(*info),
            ),
            path(
                "<path:object_id>/retry/",
                wrap(require_POST(self.retry_view)),
                name="{}_{}_retry".format(*info),
            ),
            *super().get_urls(),
        ]

    def _viewable(self, request: HttpRequest, object_id: str) -> TaskRecord:
        record: TaskRecord | None = self.get_object(request, unquote(object_id))
        if record is None:
            raise Http404(f"No task with id {object_id!r}.")
        if not self.has_view_permission(request, record):
            raise PermissionDenied
        return record

    def log_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Return the output stored after `?after=<attempt>:<seq>`, the state and progress."""
        record = self._viewable(request, object_id)
        try:
            after = parse_cursor(request.GET.get("after"))
        except ValueError:
            return HttpResponseBadRequest("after must be <attempt>:<seq>, e.g. 1:41.")
        return JsonResponse(log_since(record, after))

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        record = self._viewable(request, object_id)
        cancel_records(self, request, [record])
        return HttpResponseRedirect(self._change_url(record.pk))

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_retry_permission(request):
            raise PermissionDenied
        record = self._viewable(request, object_id)
        again = retry_records(self, request, [record])
        return HttpResponseRedirect(self._change_url(again[0].id if again else record.pk))

    def _change_url(self, pk: Any) -> str:
        return reverse(f"{self.admin_site.name}:taskmill_taskrecord_change", args=[quote(pk)])

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: TaskRecord | None = None,
    ) -> HttpResponse:
        if obj is not None:
            finished = is_finished(obj.state)
            context.update(
                taskmill_can_cancel=not finished and self.has_cancel_permission(request),
                taskmill_can_retry=(
                    obj.state in RETRYABLE_STATES and self.has_retry_permission(request)
                ),
                taskmill_live_poll_ms=LIVE_POLL_MS,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

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
        lines = reader.read_all()
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
        return log_block(lines[omitted:], omitted=omitted, live=live)

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
