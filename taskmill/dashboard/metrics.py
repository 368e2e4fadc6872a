"""The Prometheus scrape endpoint: staff who may view tasks, or a bearer token
(TASKMILL["METRICS_TOKEN"]) for scrapers."""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache

from ..conf import get_settings
from ..metrics import MissingPrometheusClient, render_metrics
from .views import VIEW_PERMISSION


def _allowed(request: HttpRequest) -> bool:
    token = get_settings().METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token is not None and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.encode())
    user = request.user
    return bool(user.is_active and user.is_staff and user.has_perm(VIEW_PERMISSION))


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of queue depth, running, counters, durations, workers."""
    if not _allowed(request):
        response = HttpResponse(
            "Forbidden: log in as staff or send the metrics token.\n", status=403
        )
        response["Content-Type"] = "text/plain; charset=utf-8"
        if get_settings().METRICS_TOKEN is not None:
            response["WWW-Authenticate"] = 'Bearer realm="taskmill metrics"'
        return response
    try:
        body, content_type = render_metrics()
    except MissingPrometheusClient as error:
        return HttpResponse(f"{error}\n", status=501, content_type="text/plain; charset=utf-8")
    return HttpResponse(body, content_type=content_type)
