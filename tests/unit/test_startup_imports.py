"""A worker's start-up imports only what it uses: no cron library without a cron schedule, no
request handlers, no autostart keeper (each costs every worker start). The migration check's
own test is in tests/db/test_schema.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import taskmill.autostart
from taskmill.autostart import keeper

REPO_ROOT = Path(__file__).resolve().parents[2]

# What the worker command imports up to its first claim, in a fresh interpreter; bench.settings
# declares no schedule and has no web server.
WORKER_START = """
import json, sys
import django.core.management
import django
django.setup()
from django.core import checks
from taskmill.cli import SUBCOMMANDS
from taskmill.worker import setup
checks.run_checks()
print(json.dumps(sorted(sys.modules)))
"""


@pytest.fixture(scope="module")
def worker_modules(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_DB_VENDOR": "sqlite",
        "BENCH_DB_NAME": str(tmp_path_factory.mktemp("imports") / "unused.sqlite3"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    finished = subprocess.run(
        [sys.executable, "-c", WORKER_START],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(finished.stdout))


@pytest.mark.parametrize(
    "module",
    [
        "croniter",  # runs `file` in a subprocess when imported
        "django.core.handlers.wsgi",
        "django.core.handlers.asgi",
        "taskmill.autostart.keeper",
    ],
)
def test_worker_start_up__does_not_import(worker_modules: set[str], module: str) -> None:
    assert "taskmill.worker.supervisor" in worker_modules  # the script got that far
    assert module not in worker_modules


def test_autostart__keeper_names_are_still_importable_from_the_package() -> None:
    assert taskmill.autostart.start is keeper.start
    assert taskmill.autostart.current_keeper is keeper.current_keeper
    assert taskmill.autostart.Keeper is keeper.Keeper
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = taskmill.autostart.nothing
