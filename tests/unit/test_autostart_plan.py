"""The autostarted worker's command line and environment, and the check of its settings."""

import os
import sys

import pytest
from django.test import override_settings

from taskmill.autostart.checks import check_autostart
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


def test_build_plan__unknown_queue_is_named_in_the_settings_words() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_plan(build_settings({"AUTOSTART_QUEUES": ["default", "emails"]}))

    assert str(caught.value) == (
        "TASKMILL['AUTOSTART_QUEUES'] names unknown queue(s) emails; "
        "TASKS['default']['QUEUES'] allows: default, low, reports."
    )


def test_build_plan__a_backend_that_allows_any_queue_needs_autostart_queues() -> None:
    backend = {"BACKEND": "taskmill.backend.DatabaseBackend", "QUEUES": []}
    with override_settings(TASKS={"default": backend}):
        with pytest.raises(ConfigurationError, match=r"set TASKMILL\['AUTOSTART_QUEUES'\]"):
            build_plan(build_settings({}))

        assert build_plan(build_settings({"AUTOSTART_QUEUES": ["any"]})).queue_names == ("any",)


def test_build_plan__the_default_backend_must_be_taskmills() -> None:
    backend = {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}
    with (
        override_settings(TASKS={"default": backend}),
        pytest.raises(ConfigurationError, match="uses ImmediateBackend, not Taskmill's"),
    ):
        build_plan(build_settings({}))


def test_check_autostart__reports_settings_no_worker_could_start_with() -> None:
    with override_settings(TASKMILL={"AUTOSTART": True, "AUTOSTART_QUEUES": ["nope"]}):
        errors = check_autostart()

    assert [error.id for error in errors] == ["taskmill.E040"]
    assert "names unknown queue(s) nope" in errors[0].msg


@pytest.mark.parametrize("raw", [{}, {"AUTOSTART": True}, {"AUTOSTART_QUEUES": ["nope"]}])
def test_check_autostart__quiet_when_off_or_fine(raw: dict[str, object]) -> None:
    with override_settings(TASKMILL=raw):
        assert check_autostart() == []
