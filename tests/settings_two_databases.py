"""Settings for the two-database test (tests/db/test_router.py): the queue in an alias of its own.

Two SQLite files in TASKMILL_TWO_DB_DIR: `default` for the project's tables, `queue` for
Taskmill's, chosen by TASKS OPTIONS["DATABASE"] and kept there by TaskmillRouter.
"""

import os
from pathlib import Path

_DIR = Path(os.environ["TASKMILL_TWO_DB_DIR"])

DATABASES = {
    alias: {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(_DIR / f"{alias}.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
    for alias in ("default", "queue")
}
DATABASE_ROUTERS = ["taskmill.routers.TaskmillRouter"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "taskmill",
    "tests.testapp",
]

TASKS = {
    "default": {
        "BACKEND": "taskmill.backend.DatabaseBackend",
        "QUEUES": ["default", "reports", "low"],
        "OPTIONS": {"DATABASE": "queue"},
    },
}

SECRET_KEY = "taskmill-tests-not-a-secret"  # noqa: S105 - test settings only
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
