"""OPTIONS["DATABASE"] with TaskmillRouter: the queue lives in a database alias of its own.

Run in subprocesses with tests/settings_two_databases.py (two SQLite files), so migrate,
enqueue and get_result go through Django exactly as in a project configured that way.
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from taskmill.models import TaskRecord
from taskmill.routers import TaskmillRouter, queue_databases
from tests.processes import REPO_ROOT
from tests.testapp.models import Article

SETTINGS = "tests.settings_two_databases"
TIMEOUT = 120

ENQUEUE_SCRIPT = """
import json

import django

django.setup()

import taskmill
from django.tasks import default_task_backend
from tests.testapp import tasks
from tests.testapp.models import Article

result = tasks.add.enqueue(1, 2)
fetched = default_task_backend.get_result(result.id)
article = Article.objects.create(title="lives in default")
owned = tasks.noop.using(for_object=article).enqueue()
print(json.dumps({
    "id": result.id,
    "equal": fetched == result,
    "args": fetched.args,
    "history": [str(record.id) for record in taskmill.history(article)],
    "owned": owned.id,
    "cancelled": taskmill.cancel(owned.id),
}))
"""


def run_django(tmp_path: Path, *args: str) -> str:
    """Run `python *args` with the two-database settings; return stdout, failing on errors."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "TASKMILL_TWO_DB_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, (
        f"python {' '.join(args)} exited {completed.returncode}\n"
        f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    )
    return completed.stdout


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute(sql))


MIGRATE_SCRIPT = """
import django

django.setup()

from django.core.management import call_command

for alias in ("default", "queue"):
    call_command("migrate", database=alias, interactive=False, verbosity=0)
"""


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate both aliases (as `migrate --database ...` does); return the folder of the files."""
    folder = tmp_path_factory.mktemp("two_databases")
    run_django(folder, "-c", MIGRATE_SCRIPT)
    return folder


@pytest.mark.only_on("sqlite")  # two SQLite files; the router is the same everywhere
def test_migrate__taskmill_tables_exist_only_in_the_queue_database(migrated: Path) -> None:
    default_tables = tables(migrated / "default.sqlite3")
    queue_tables = tables(migrated / "queue.sqlite3")

    taskmill_tables = {
        "taskmill_taskrecord",
        "taskmill_taskdependency",
        "taskmill_logchunk",
        "taskmill_schedule",
        "taskmill_worker",
    }
    assert taskmill_tables <= queue_tables
    assert not {name for name in default_tables if name.startswith("taskmill_")}
    assert "testapp_article" in default_tables


@pytest.mark.only_on("sqlite")  # two SQLite files; the router is the same everywhere
def test_enqueue__stores_and_reads_results_in_the_queue_database(migrated: Path) -> None:
    output = run_django(migrated, "-c", ENQUEUE_SCRIPT)
    report = json.loads(output.strip().splitlines()[-1])

    assert report["equal"] is True
    assert report["args"] == [1, 2]
    assert report["history"] == [report["owned"]]
    assert report["cancelled"] is True
    stored = rows(
        migrated / "queue.sqlite3", "SELECT id, task_path, state FROM taskmill_taskrecord"
    )
    assert {(task_path, state) for _id, task_path, state in stored} == {
        ("tests.testapp.tasks.add", "ready"),
        ("tests.testapp.tasks.noop", "cancelled"),
    }
    assert rows(migrated / "default.sqlite3", "SELECT title FROM testapp_article") == [
        ("lives in default",)
    ]


# --- the router on its own, in this process -----------------------------------------------


def test_queue_databases__is_default_without_the_option() -> None:
    assert queue_databases() == ["default"]


def test_router__sends_taskmill_models_to_the_queue_database_only() -> None:
    router = TaskmillRouter()

    assert router.db_for_read(TaskRecord) == "default"
    assert router.db_for_write(TaskRecord) == "default"
    assert router.db_for_read(Article) is None
    assert router.allow_migrate("default", "taskmill") is True
    assert router.allow_migrate("other", "taskmill") is False
    assert router.allow_migrate("other", "testapp") is None
