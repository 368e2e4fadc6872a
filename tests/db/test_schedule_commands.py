"""`manage.py taskmill schedule` and `taskmill purge`, and operations.purge()."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

import taskmill
from taskmill.cli.schedules import parse_duration
from taskmill.models import Schedule, TaskRecord
from taskmill.testing import run_until_empty
from tests.testapp.tasks import fail_value_error, noop

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def run(*args: str) -> str:
    out = StringIO()
    call_command("taskmill", *args, stdout=out)
    return out.getvalue()


def test_schedule__lists_schedules_aligned_with_last_and_next_runs() -> None:
    Schedule.objects.create(
        name="nightly",
        task_path="tests.testapp.tasks.noop",
        cron="0 2 * * *",
        timezone="Europe/Paris",
        last_due_at=datetime(2026, 1, 1, 1, tzinfo=UTC),
        next_due_at=datetime(2026, 1, 2, 1, tzinfo=UTC),
    )
    Schedule.objects.create(
        name="often", task_path="tests.testapp.tasks.noop", interval_seconds=30, enabled=False
    )

    lines = run("schedule").splitlines()

    assert lines[0].split() == [
        "NAME",
        "TASK",
        "WHEN",
        "TIMEZONE",
        "ENABLED",
        "LAST",
        "RUN",
        "NEXT",
        "RUN",
    ]
    assert lines[1].split()[:3] == ["nightly", "tests.testapp.tasks.noop", "0"]
    assert "2026-01-01T01:00:00+00:00" in lines[1]
    assert "2026-01-02T01:00:00+00:00" in lines[1]
    assert "every 30s" in lines[2]
    assert lines[1].index("tests.testapp") == lines[2].index("tests.testapp")


def test_schedule__json_and_empty() -> None:
    assert run("schedule").strip() == "No schedules."
    Schedule.objects.create(name="often", task_path="tests.testapp.tasks.noop", interval_seconds=30)

    (listed,) = json.loads(run("schedule", "--json"))

    assert listed["name"] == "often"
    assert listed["when"] == "every 30s"


def finish_some() -> None:
    for _ in range(3):
        noop.enqueue()
    fail_value_error.enqueue()
    run_until_empty()


def test_purge__deletes_only_expired_by_default() -> None:
    finish_some()
    TaskRecord.objects.filter(state="succeeded")[:0]
    expired = TaskRecord.objects.filter(state="succeeded").first()
    assert expired is not None
    TaskRecord.objects.filter(id=expired.id).update(expires_at=LONG_AGO)

    assert taskmill.purge() == {"succeeded": 1}
    assert TaskRecord.objects.count() == 3


def test_purge__older_than_and_status() -> None:
    finish_some()
    TaskRecord.objects.update(finished_at=LONG_AGO)

    assert taskmill.purge(older_than=timedelta(days=1), states=["failed"]) == {"failed": 1}
    assert taskmill.purge(older_than=timedelta(days=1)) == {"succeeded": 3}
    assert not TaskRecord.objects.exists()


def test_purge__never_deletes_queued_tasks() -> None:
    noop.enqueue()

    assert taskmill.purge(older_than=timedelta(0)) == {}
    assert TaskRecord.objects.count() == 1


def test_purge__refuses_unfinished_states() -> None:
    with pytest.raises(ValueError, match=r"state\(s\) ready; choose among cancelled, failed"):
        taskmill.purge(states=["ready"])


def test_purge_command__dry_run_prints_what_would_go() -> None:
    finish_some()
    TaskRecord.objects.update(finished_at=LONG_AGO)

    output = run("purge", "--older-than", "7d", "--dry-run")

    assert output.splitlines()[0] == "would delete 4 finished task(s)"
    assert output.splitlines()[1].split() == ["STATE", "COUNT"]
    assert output.splitlines()[2].split() == ["failed", "1"]
    assert TaskRecord.objects.count() == 4


def test_purge_command__deletes_and_reports_json() -> None:
    finish_some()
    TaskRecord.objects.update(finished_at=LONG_AGO)

    report = json.loads(run("purge", "--older-than", "1h", "--status", "succeeded", "--json"))

    assert report == {"dry_run": False, "deleted": {"succeeded": 3}}


def test_purge_command__bad_status_is_a_command_error() -> None:
    with pytest.raises(CommandError, match=r"Can't purge tasks in state\(s\) done"):
        run("purge", "--status", "done")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("7d", 604800)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
