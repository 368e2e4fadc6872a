"""Settings of Taskmill's example project: SQLite, the admin, and Taskmill's database backend
with AUTOSTART, so `make serve` (runserver) runs a worker too; `make demo` starts its own.

TASKMILL_EXAMPLE_DB: path of the SQLite file (default: example/db.sqlite3); the demo's smoke
test points it at a temporary file.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "taskmill-example-not-a-secret"  # noqa: S105 - a local example, never deployed
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "taskmill",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "exampleproject.urls"
WSGI_APPLICATION = "exampleproject.wsgi.application"

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

# The queue lives in the project's own database. SQLite needs two things for a worker beside
# the web process: WAL, so readers never wait for the writer, and IMMEDIATE transactions, so
# a transaction takes the write lock at BEGIN instead of failing to upgrade it halfway.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TASKMILL_EXAMPLE_DB") or BASE_DIR / "db.sqlite3",
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    },
}

TASKS = {
    "default": {
        "BACKEND": "taskmill.backend.DatabaseBackend",
        "QUEUES": ["default", "reports"],
    },
}

# `runserver` (or any WSGI/ASGI server) starts a worker beside it: migrate and runserver is
# all the example needs. See docs/how-to/embedded-worker.md.
TASKMILL = {"AUTOSTART": True}

# Tasks send their e-mail to the worker's output.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = "shop@example.com"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
