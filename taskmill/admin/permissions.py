"""Refusing an admin action the user may not run, with a 403 rather than Django's silence.

Django leaves an action out of the list for a user without its permission, and a POST naming
it anyway gets "No action selected" and a 200; Taskmill's admins answer 403, so a crafted
request is told plainly and a test can tell refused from done.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


class RefuseUnpermittedActionsMixin:
    """A ModelAdmin whose changelist answers 403 to a POST of an action the user lacks."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        admin: ModelAdmin[Any] = self  # type: ignore[assignment]  # mixed into a ModelAdmin
        action = request.POST.get("action") if request.method == "POST" else None
        if action in _action_names(admin) and action not in admin.get_actions(request):
            raise PermissionDenied(f"Running {action!r} needs a permission this user lacks.")
        response: HttpResponse = super().changelist_view(request, extra_context)  # type: ignore[misc]  # a ModelAdmin's
        return response


def _action_names(admin: ModelAdmin[Any]) -> set[str]:
    """Every action the admin has for some user: the site's (delete_selected) and its own."""
    own = {action if isinstance(action, str) else action.__name__ for action in admin.actions or ()}
    return own | {name for name, _ in admin.admin_site.actions}
