"""The example site's way in: the demo's superuser, created if missing, and the pages to visit
once `make serve` runs."""

from typing import Final

from django.contrib.auth import get_user_model

USERNAME: Final = "admin"
# A fixed password for a local example that listens on 127.0.0.1 only; never deploy it.
PASSWORD: Final = "taskmill-demo"  # noqa: S105
DEFAULT_PORT: Final = 8000


def ensure_superuser() -> bool:
    """Create the demo's superuser unless a user of that name exists; return True if created.

    An existing user is left as it is: its password may have been changed on purpose.
    """
    users = get_user_model()
    if users.objects.filter(username=USERNAME).exists():
        return False
    users.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    return True


def visit_lines(port: int = DEFAULT_PORT) -> list[str]:
    """Say where to look and how to log in, one line each."""
    base = f"http://127.0.0.1:{port}"
    return [
        f"  Admin:      {base}/admin/  (Taskmill > Tasks: each task with its live log;",
        "              Shop > Orders: each order with the tasks run for it)",
        f"  Dashboard:  {base}/taskmill/",
        f"  Log in as:  {USERNAME} / {PASSWORD}",
    ]
