"""Django settings for Taskmill's test suite; the database comes from TASKMILL_TEST_DB.

TASKMILL_TEST_DB: sqlite (default) | postgres | mariadb.
TASKMILL_TEST_RUN_ID: names this run's test database (default: random, made once per import).
TASKMILL_TEST_DB_NAME: set by tests for worker subprocesses, so they use the test database the
    test process created; it becomes the default database NAME.
TASKMILL_PG_USER: PostgreSQL user (default postgres).
TASKMILL_TEST_SECOND_DB=1: adds a second alias, "queue", on the same server.
TASKMILL_TEST_SETTINGS: a JSON object used as the TASKMILL setting (e.g. a short lease for
    the worker processes of crash tests).
TASKMILL_TEST_DB_HOST, TASKMILL_TEST_DB_PORT: where PostgreSQL or MariaDB is reached (default
    127.0.0.1 and the vendor's port). Set by tests for worker subprocesses that reach the
    server another way, e.g. through tests/chaos/forwarder.py from a network namespace.
TASKMILL_TEST_CONN_HEALTH_CHECKS=1: sets CONN_HEALTH_CHECKS on PostgreSQL and MariaDB, as the
    docs recommend for workers.
TASKMILL_PG_SERVER_SIDE_BINDING=1: PostgreSQL binds parameters on the server (Django's
    OPTIONS["server_side_binding"]), one statement per message; scripts/test runs the Django
    6.0 PostgreSQL stage so, the others bind on the client, Django's default.
"""

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
_TMP_DIR = Path(tempfile.gettempdir())

TEST_DB = os.environ.get("TASKMILL_TEST_DB", "sqlite")
TEST_DB_CHOICES = ("sqlite", "postgres", "mariadb")
if TEST_DB not in TEST_DB_CHOICES:
    raise ValueError(
        f"TASKMILL_TEST_DB={TEST_DB!r} is not supported; use one of {', '.join(TEST_DB_CHOICES)}."
    )

# One id per test run: each run creates and drops its own test databases, so runs on the same
# servers (two checkouts, two CI jobs) never share one.
RUN_ID = os.environ.get("TASKMILL_TEST_RUN_ID") or secrets.token_hex(4)
_HOST = os.environ.get("TASKMILL_TEST_DB_HOST", "127.0.0.1")
_HEALTH_CHECKS = (
    {"CONN_HEALTH_CHECKS": True}
    if os.environ.get("TASKMILL_TEST_CONN_HEALTH_CHECKS") == "1"
    else {}
)


def _database(suffix: str, live_name: str | None) -> dict[str, Any]:
    """Build one DATABASES entry; `live_name` is a test database created by another process."""
    test_name = f"test_taskmill_{RUN_ID}{suffix}"
    if TEST_DB == "sqlite":
        # A file, never :memory:, so worker subprocesses share the database with the test.
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN,
        # so a transaction never fails to upgrade its lock halfway through.
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": live_name or str(_TMP_DIR / f"taskmill{suffix}.sqlite3"),
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            "TEST": {"NAME": str(_TMP_DIR / f"{test_name}.sqlite3")},
        }
    if TEST_DB == "postgres":
        return _HEALTH_CHECKS | {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": _HOST,
            "PORT": os.environ.get("TASKMILL_TEST_DB_PORT", "5432"),
            "USER": os.environ.get("TASKMILL_PG_USER", "postgres"),
            "PASSWORD": "",
            "NAME": live_name or "test",
            "TEST": {"NAME": test_name},
            "OPTIONS": {
                "server_side_binding": os.environ.get("TASKMILL_PG_SERVER_SIDE_BINDING") == "1"
            },
        }
    return _HEALTH_CHECKS | {
        "ENGINE": "django.db.backends.mysql",
        "HOST": _HOST,
        "PORT": os.environ.get("TASKMILL_TEST_DB_PORT", "3306"),
        "USER": "root",
        "PASSWORD": "",
        "NAME": live_name or "test",
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {
            "NAME": test_name,
            "CHARSET": "utf8mb4",
            "COLLATION": "utf8mb4_unicode_ci",
        },
    }


DATABASES: dict[str, dict[str, Any]] = {
    "default": _database("", os.environ.get("TASKMILL_TEST_DB_NAME")),
}
# A second alias on the same server, for tests of OPTIONS["DATABASE"] (the queue living in a
# database of its own). Off by default: every alias costs a test database per run.
if os.environ.get("TASKMILL_TEST_SECOND_DB") == "1":
    DATABASES["queue"] = _database("_queue", os.environ.get("TASKMILL_TEST_QUEUE_DB_NAME"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # The browser tests' live server serves the admin's CSS, so screenshots look as in use.
    "django.contrib.staticfiles",
    "taskmill",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ROOT_URLCONF = "tests.urls"
STATIC_URL = "static/"
# A fast hasher: the admin tests log users in, and the default one costs ~0.5 s a user.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# For the web servers the autostart tests start (the test client's host is always allowed).
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SECRET_KEY = "taskmill-tests-not-a-secret"  # noqa: S105 - test settings only
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": "taskmill.backend.DatabaseBackend",
        "QUEUES": ["default", "reports", "low"],
    },
}

TASKMILL = json.loads(os.environ.get("TASKMILL_TEST_SETTINGS") or "{}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"taskmill": {"handlers": ["console"], "level": "INFO"}},
}
