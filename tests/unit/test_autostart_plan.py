"""The autostarted worker's command line and environment."""

import os
import sys

import pytest

from taskmill.autostart.plan import WORKER_GRACE, Plan, build_plan, worker_environment
from taskmill.conf import build_settings
from taskmill.exceptions import ConfigurationError


def test_plan_command__runs_the_worker_command_with_the_parent_pid() -> None:
    plan = Plan(
        backend_alias="default", database_alias="default", queue_names=("a", "b"), concurrency=3
    )

    assert plan.command(parent_pid=42) == [
        sys.executable,
        *("-m", "django", "taskmill", "worker"),
        "--backend=default",
        "--queues=a,b",
        "--concurrency=3",
        f"--grace={WORKER_GRACE}",
        "--parent-pid=42",
    ]


def test_build_plan__uses_the_autostart_settings() -> None:
    plan = build_plan(build_settings({"AUTOSTART_QUEUES": ["reports"], "AUTOSTART_CONCURRENCY": 3}))

    assert plan == Plan(
        backend_alias="default", database_alias="default", queue_names=("reports",), concurrency=3
    )


def test_build_plan__defaults_to_every_queue_of_the_backend() -> None:
    assert build_plan(build_settings({})).queue_names == ("default", "low", "reports")


def test_build_plan__needs_the_settings_module_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")

    with pytest.raises(ConfigurationError, match="DJANGO_SETTINGS_MODULE is not set"):
        build_plan(build_settings({}))


def test_worker_environment__carries_the_import_path_and_drops_run_main(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUN_MAIN", "true")
    monkeypatch.setattr(sys, "path", ["", "/project", "/venv/site-packages", "/project"])

    env = worker_environment()

    assert env["PYTHONPATH"] == os.pathsep.join([os.getcwd(), "/project", "/venv/site-packages"])
    assert "RUN_MAIN" not in env
    assert env["DJANGO_SETTINGS_MODULE"] == os.environ["DJANGO_SETTINGS_MODULE"]
