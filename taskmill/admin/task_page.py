"""The task page's own views: the Cancel and Retry buttons and the live log's JSON, plus the
permissions they check. TaskRecordAdmin (tasks.py) builds on this base."""

from __future__ import annotations

from typing import Any, Final

from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from ..models import TaskRecord
from ..operations import RETRYABLE_STATES
from ..states import is_finished
from .actions import CANCEL_PERMISSION, RETRY_PERMISSION, cancel_records, retry_records
from .live import MarkupFreeJSONEncoder, log_since, parse_cursor
from .permissions import RefuseUnpermittedActionsMixin

# How often the task page asks for new output while the task runs.
LIVE_POLL_MS: Final = 1000


class TaskPageAdmin(RefuseUnpermittedActionsMixin, admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    """The views and permissions behind the task page's buttons and live log."""

    def has_cancel_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm(CANCEL_PERMISSION))

    def has_retry_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm(RETRY_PERMISSION))

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
        response = JsonResponse(log_since(record, after), encoder=MarkupFreeJSONEncoder)
        response["X-Content-Type-Options"] = "nosniff"  # JSON, never to be sniffed as a page
        return response

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
