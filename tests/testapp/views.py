"""Views for tests that drive a real web server."""

from django.http import HttpRequest, HttpResponse

from .tasks import append_to_ledger


def enqueue_append_to_ledger(request: HttpRequest, key: str) -> HttpResponse:
    """Enqueue append_to_ledger(key); answer with the task result's id."""
    return HttpResponse(append_to_ledger.enqueue(key).id, content_type="text/plain")
