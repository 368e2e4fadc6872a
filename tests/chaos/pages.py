"""What the security tests read Taskmill's output through: admin URLs and the command line."""

from __future__ import annotations

import io

from django.core.management import call_command
from django.urls import reverse


def admin_url(name: str, *args: object) -> str:
    """Reverse one of Taskmill's admin URLs, e.g. admin_url("taskrecord_change", task_id)."""
    return reverse(f"admin:taskmill_{name}", args=[str(arg) for arg in args])


def run_cli(*args: str) -> str:
    """Run `manage.py taskmill ARGS` and return what it printed."""
    out = io.StringIO()
    call_command("taskmill", *args, stdout=out)
    return out.getvalue()
