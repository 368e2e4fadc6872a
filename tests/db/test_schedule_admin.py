"""The schedules admin: list, enable/disable, run now."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from taskmill.models import Schedule, TaskRecord

pytestmark = pytest.mark.django_db

URL = "/admin/taskmill/schedule/"


@pytest.fixture
def schedule() -> Schedule:
    return Schedule.objects.create(
        name="adder",
        task_path="tests.testapp.tasks.add",
        args=[1, 2],
        cron="30 7 * * 1",
        timezone="Europe/Paris",
        next_due_at=datetime(2026, 1, 5, 6, 30, tzinfo=UTC),
    )


def test_list_shows_timing_and_due_times(admin_client: Client, schedule: Schedule) -> None:
    page = admin_client.get(URL).content.decode()

    for text in ("adder", "tests.testapp.tasks.add", "30 7 * * 1", "Europe/Paris"):
        assert text in page


def test_no_add_button(admin_client: Client) -> None:
    assert admin_client.get(f"{URL}add/").status_code == 403


def test_disable_then_enable(admin_client: Client, schedule: Schedule) -> None:
    admin_client.post(URL, {"action": "disable", "_selected_action": [schedule.pk]})
    schedule.refresh_from_db()
    assert schedule.enabled is False

    admin_client.post(URL, {"action": "enable", "_selected_action": [schedule.pk]})
    schedule.refresh_from_db()
    assert schedule.enabled is True
    assert schedule.next_due_at is not None
    assert schedule.next_due_at > datetime(2026, 1, 5, tzinfo=UTC)


def test_run_now_enqueues_the_task_with_its_arguments(
    admin_client: Client, schedule: Schedule
) -> None:
    response = admin_client.post(
        URL, {"action": "run_now", "_selected_action": [schedule.pk]}, follow=True
    )

    record = TaskRecord.objects.get()
    assert (record.task_path, record.args) == ("tests.testapp.tasks.add", [1, 2])
    assert [str(m) for m in response.context["messages"]] == [f"adder: enqueued {record.id}."]


def test_run_now_of_a_task_that_no_longer_imports_says_so(admin_client: Client) -> None:
    broken = Schedule.objects.create(
        name="broken", task_path="tests.testapp.tasks.gone", interval_seconds=60
    )

    response = admin_client.post(
        URL, {"action": "run_now", "_selected_action": [broken.pk]}, follow=True
    )

    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("broken: not enqueued: ")
    assert not TaskRecord.objects.exists()
