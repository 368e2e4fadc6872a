"""System checks: a wrong TASKS entry or TASKMILL setting is reported by `manage.py check`, with
the setting's name and what is allowed."""

from __future__ import annotations

import json
import sqlite3
from io import StringIO
from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connections
from django.test import override_settings
from django.test.utils import override_system_checks

from taskmill.backend import QUEUE_NAME_MAX_LENGTH, backend_problems

# Some checks (Django's own among them) read the database.
pytestmark = pytest.mark.django_db

BACKEND = "taskmill.backend.DatabaseBackend"


def tasks_setting(**entry: Any) -> dict[str, dict[str, Any]]:
    """A TASKS setting whose default backend is Taskmill's, with entry's keys added."""
    return {"default": {"BACKEND": BACKEND, **entry}}


def taskmill_messages() -> list[checks.CheckMessage]:
    """Run every system check; return the messages Taskmill raised."""
    return [
        message
        for message in checks.run_checks()
        if message.id is not None and message.id.startswith("taskmill.")
    ]


def test_checks__clean_for_the_test_settings() -> None:
    assert taskmill_messages() == []


def test_checks__manage_py_check_passes_for_the_test_settings() -> None:
    call_command("check")  # raises SystemCheckError on any error


def test_checks__unknown_options_key_is_reported_with_the_allowed_keys() -> None:
    with override_settings(TASKS=tasks_setting(OPTIONS={"DATABSE": "default"})):
        (message,) = taskmill_messages()

    assert message.id == "taskmill.E001"
    assert message.level == checks.ERROR
    assert message.msg == "Unknown key 'DATABSE' in TASKS['default']['OPTIONS']."
    assert message.hint == "Allowed keys: DATABASE."
    assert message.obj == "TASKS['default']"


def test_checks__wrong_type_of_an_option_is_reported() -> None:
    with override_settings(TASKS=tasks_setting(OPTIONS={"DATABASE": 1})):
        (message,) = taskmill_messages()

    assert message.id == "taskmill.E001"
    assert message.msg == "TASKS['default']['OPTIONS']['DATABASE'] must be str, not int."
    assert message.hint is not None
    assert "settings.DATABASES" in message.hint


def test_checks__unknown_database_alias_is_reported_with_the_known_ones() -> None:
    with override_settings(TASKS=tasks_setting(OPTIONS={"DATABASE": "queue_db"})):
        (message,) = taskmill_messages()

    assert message.id == "taskmill.E001"
    assert message.msg == (
        "TASKS['default']['OPTIONS']['DATABASE'] is 'queue_db', which is not in DATABASES."
    )
    assert message.hint == f"Use one of: {', '.join(sorted(connections.settings))}."


def test_checks__options_that_are_not_a_dict_are_reported() -> None:
    with override_settings(TASKS=tasks_setting(OPTIONS=["DATABASE"])):
        messages = taskmill_messages()

    assert [message.msg for message in messages] == ["TASKS['default']['OPTIONS'] must be a dict."]


def test_checks__every_problem_is_reported_at_once() -> None:
    options = {"DATABASE": "nowhere", "POLL": 1, "TIMEOUT": 2}
    with override_settings(TASKS=tasks_setting(OPTIONS=options)):
        messages = taskmill_messages()

    assert len(messages) == 3
    assert {message.id for message in messages} == {"taskmill.E001"}


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ("default", "TASKS['default']['QUEUES'] must be a list of queue names, not 'default'."),
        (5, "TASKS['default']['QUEUES'] must be a list of queue names, not 5."),
        (["default", ""], "TASKS['default']['QUEUES'] contains an invalid queue name ''."),
        (["default", 7], "TASKS['default']['QUEUES'] contains an invalid queue name 7."),
        (
            ["q" * (QUEUE_NAME_MAX_LENGTH + 1)],
            f"TASKS['default']['QUEUES'] contains an invalid queue name "
            f"'{'q' * (QUEUE_NAME_MAX_LENGTH + 1)}'.",
        ),
    ],
    ids=["str", "int", "empty name", "int name", "too long"],
)
def test_checks__bad_queues_are_reported(queues: object, message: str) -> None:
    problems = backend_problems("default", {"BACKEND": BACKEND, "QUEUES": queues})

    assert [problem for problem, _hint in problems] == [message]
    assert str(QUEUE_NAME_MAX_LENGTH) in problems[0][1]


def test_checks__bad_queue_name_is_reported_by_check() -> None:
    with override_settings(TASKS=tasks_setting(QUEUES=["default", ""])):
        (message,) = taskmill_messages()

    assert message.msg == "TASKS['default']['QUEUES'] contains an invalid queue name ''."


def test_checks__manage_py_check_fails_naming_the_bad_key() -> None:
    with (
        override_settings(TASKS=tasks_setting(OPTIONS={"DATABSE": "default"})),
        pytest.raises(SystemCheckError) as caught,
    ):
        call_command("check")

    assert "taskmill.E001" in str(caught.value)
    assert "Unknown key 'DATABSE' in TASKS['default']['OPTIONS']" in str(caught.value)
    assert "Allowed keys: DATABASE" in str(caught.value)


def test_checks__bad_taskmill_setting_is_reported_with_the_key() -> None:
    with override_settings(TASKMILL={"LEASE_SECONDS": "30"}):
        (message,) = taskmill_messages()

    assert message.id == "taskmill.E010"
    assert message.msg == "TASKMILL['LEASE_SECONDS'] must be int or float, not str ('30')."


def test_checks__unknown_taskmill_key_fails_manage_py_check() -> None:
    with (
        override_settings(TASKMILL={"AUTO_START": True}),
        pytest.raises(SystemCheckError) as caught,
    ):
        call_command("check")

    assert "taskmill.E010" in str(caught.value)
    assert "'AUTO_START'" in str(caught.value)


def test_checks__a_second_backend_is_checked_too() -> None:
    setting = {
        **tasks_setting(),
        "other": {"BACKEND": BACKEND, "OPTIONS": {"DATABASE": "missing"}},
    }
    with override_settings(TASKS=setting):
        (message,) = taskmill_messages()

    assert message.obj == "TASKS['other']"
    assert "TASKS['other']['OPTIONS']['DATABASE'] is 'missing'" in message.msg


def test_checks__queue_database_of_an_unsupported_vendor_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connections["default"], "vendor", "oracle")

    (message,) = taskmill_messages()

    assert message.id == "taskmill.E020"
    assert message.msg == "Database 'default' is 'oracle', which Taskmill can't use for its queue."
    assert message.hint is not None
    assert "PostgreSQL, MariaDB/MySQL or SQLite" in message.hint


def _failing_check(**kwargs: object) -> list[checks.CheckMessage]:
    return [checks.Error("a problem the checks found", id="tests.E001")]


@pytest.mark.parametrize(
    "subcommand", [["status"], ["worker", "--burst", "--concurrency", "1"]], ids=lambda a: a[0]
)
def test_taskmill_command__runs_the_system_checks_first(subcommand: list[str]) -> None:
    """The command runs them itself (the worker with its start-up retry), not Django's
    execute(): their errors still stop every subcommand before it does anything."""
    with (
        override_system_checks([_failing_check]),
        pytest.raises(SystemCheckError, match=r"tests\.E001"),
    ):
        call_command("taskmill", *subcommand, skip_checks=False)


@pytest.mark.parametrize(
    "arguments",
    [["--skip-checks", "status", "--json"], ["status", "--json", "--skip-checks"]],
    ids=["before the subcommand", "after it"],
)
def test_taskmill_command__skip_checks_skips_them(arguments: list[str]) -> None:
    out = StringIO()
    with override_system_checks([_failing_check]):
        call_command("taskmill", *arguments, stdout=out)

    assert json.loads(out.getvalue())


@pytest.mark.only_on("sqlite")
@pytest.mark.django_db(transaction=True)
def test_taskmill_command__a_sqlite_lock_held_by_another_writer_is_not_taken_for_no_json() -> None:
    default = connections["default"]
    default.ensure_connection()
    features_before = dict(default.features.__dict__)
    default.features.__dict__.pop("supports_json_field", None)
    writer = sqlite3.connect(str(default.settings_dict["NAME"]), isolation_level=None)
    with default.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 200")  # Django's probe would give up after this
    try:
        writer.execute("BEGIN IMMEDIATE")
        out = StringIO()
        # Without the lock-free question first: SystemCheckError, fields.E180.
        call_command("taskmill", "status", "--json", skip_checks=False, stdout=out)
    finally:
        writer.close()
        default.close()  # its next connection has the settings' busy timeout again
        default.features.__dict__.update(features_before)

    assert json.loads(out.getvalue())
    assert default.features.supports_json_field is True
