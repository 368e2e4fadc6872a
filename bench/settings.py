"""Django settings for the bench: one queue database, chosen by the environment.

BENCH_DB_VENDOR: sqlite | postgresql | mariadb.
BENCH_DB_NAME: the database the bench created (a file path for SQLite).
Every other setting is Taskmill's default, so the figures are those of a plain install.
"""

import os
from typing import Any

VENDOR = os.environ.get("BENCH_DB_VENDOR", "sqlite")
NAME = os.environ.get("BENCH_DB_NAME", "")


def _database(vendor: str, name: str) -> dict[str, Any]:
    if vendor == "sqlite":
        # As tests/settings.py: WAL so readers run beside the writer, IMMEDIATE so a
        # transaction takes the write lock at BEGIN.
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    if vendor == "postgresql":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "USER": "postgres",
            "PASSWORD": "",
            "NAME": name,
        }
    if vendor == "mariadb":
        return {
            "ENGINE": "django.db.backends.mysql",
            "HOST": "127.0.0.1",
            "PORT": "3306",
            "USER": "root",
            "PASSWORD": "",
            "NAME": name,
            "OPTIONS": {"charset": "utf8mb4"},
        }
    raise ValueError(f"BENCH_DB_VENDOR={vendor!r}; use sqlite, postgresql or mariadb.")


DATABASES = {"default": _database(VENDOR, NAME)}

INSTALLED_APPS = ["django.contrib.contenttypes", "taskmill"]
TASKS = {"default": {"BACKEND": "taskmill.backend.DatabaseBackend", "QUEUES": ["default"]}}

DEBUG = False
SECRET_KEY = "taskmill-bench-not-a-secret"  # noqa: S105 - bench settings only
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
