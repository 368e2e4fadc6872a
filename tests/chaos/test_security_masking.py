"""Argument values whose name looks secret are masked wherever Taskmill shows arguments (the
admin, the dashboard, the command line, the worker's logs), for display only: the stored row
and what the task receives keep the real values."""

from __future__ import annotations

import html
import json
from typing import Final
from uuid import UUID

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from taskmill.masking import MASK
from taskmill.models import Schedule, TaskRecord
from taskmill.states import State
from taskmill.testing import run_until_empty
from tests.chaos.pages import admin_url, run_cli
from tests.db.rows import store_progress
from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db

SECRETS: Final = {
    "password": "hunter2-password",
    "api_key": "k-123-api",
    "clientSecret": "s-456-client",
}
NESTED: Final = "nested-value-789"
LISTED: Final = "listed-value-012"
PLAIN: Final = "plain-visible-345"
ALL_SECRETS: Final = (*SECRETS.values(), NESTED, LISTED)


def enqueue_with_secrets(**extra: object) -> TaskRecord:
    article = Article.objects.create(title="owner")
    result = tasks.echo.using(for_object=article).enqueue(
        "positional-is-shown",
        {"session": {"id": NESTED}},
        **SECRETS,
        options={"database": {"host": "db", "password": NESTED}, "monkey": PLAIN},
        hosts=[{"name": PLAIN, "credentials": LISTED}],
        **extra,
    )
    return TaskRecord.objects.get(id=result.id)


def test_admin_dashboard_and_cli__never_show_a_secret(admin_client: Client) -> None:
    record = enqueue_with_secrets()
    store_progress(str(record.id), 1, 2, "working")
    owner_page = reverse("admin:testapp_article_change", args=[record.object_id])

    shown = {
        "task page": admin_client.get(admin_url("taskrecord_change", record.id)),
        "list": admin_client.get(admin_url("taskrecord_changelist")),
        "history": admin_client.get(owner_page),
        "dashboard": admin_client.get(reverse("taskmill_dashboard:index")),
    }
    printed = {
        "show": run_cli("show", str(record.id)),
        "show --json": run_cli("show", str(record.id), "--json"),
        "list": run_cli("list"),
        "list --json": run_cli("list", "--json"),
    }

    texts = {**{k: v.content.decode() for k, v in shown.items()}, **printed}
    for where, text in texts.items():
        for secret in ALL_SECRETS:
            assert secret not in text, (where, secret)
    assert PLAIN in texts["task page"]
    assert "positional-is-shown" in texts["task page"]
    assert html.escape(f'"password": "{MASK}"') in texts["task page"]
    data = json.loads(printed["show --json"])
    assert data["args"] == ["positional-is-shown", {"session": MASK}]
    assert data["kwargs"]["api_key"] == MASK
    assert data["kwargs"]["options"] == {
        "database": {"host": "db", "password": MASK},
        "monkey": PLAIN,
    }
    assert data["kwargs"]["hosts"] == [{"name": PLAIN, "credentials": MASK}]
    assert f"'password': '{MASK}'" in printed["show"]


def test_the_row_and_the_task__keep_the_real_values() -> None:
    record = enqueue_with_secrets()

    run_until_empty()

    record.refresh_from_db()
    assert record.state == State.SUCCEEDED
    assert record.kwargs["password"] == SECRETS["password"]
    assert record.kwargs["options"]["database"]["password"] == NESTED
    assert isinstance(record.return_value, dict)  # echo returns what it was called with
    received = record.return_value["kwargs"]
    assert received["clientSecret"] == SECRETS["clientSecret"]
    assert received["hosts"] == [{"name": PLAIN, "credentials": LISTED}]
    assert record.return_value["args"][1] == {"session": {"id": NESTED}}


def test_turned_off__every_value_is_shown(admin_client: Client) -> None:
    record = enqueue_with_secrets()

    with override_settings(TASKMILL={"MASK_SECRET_ARGUMENTS": False}):
        page = admin_client.get(admin_url("taskrecord_change", record.id)).content.decode()
        printed = run_cli("show", str(record.id))

    for secret in ALL_SECRETS:
        assert secret in page
        assert secret in printed


def test_extra_names__from_the_setting(admin_client: Client) -> None:
    record = enqueue_with_secrets(card_pin="4321", pinned="kept-1")
    url = admin_url("taskrecord_change", record.id)

    with override_settings(TASKMILL={"SECRET_ARGUMENT_NAMES": ["pin"]}):
        page = admin_client.get(url).content.decode()
    default = admin_client.get(url).content.decode()

    assert "4321" not in page
    assert "kept-1" in page  # whole words only
    assert "4321" in default


def test_schedules__masked_on_their_page_but_run_with_the_real_values(
    admin_client: Client,
) -> None:
    schedule = Schedule.objects.create(
        name="sync",
        task_path="tests.testapp.tasks.echo",
        kwargs={"apiKey": "k-999-schedule", "page": 1},
        cron="0 3 * * *",
    )

    page = admin_client.get(admin_url("schedule_change", schedule.pk)).content.decode()
    posted = {"action": "run_now", "_selected_action": [schedule.pk]}
    admin_client.post(admin_url("schedule_changelist"), posted)

    assert "k-999-schedule" not in page
    enqueued = TaskRecord.objects.get(task_path="tests.testapp.tasks.echo")
    assert enqueued.kwargs == {"apiKey": "k-999-schedule", "page": 1}


def test_admin_history__holds_no_secret_and_a_retry_keeps_the_values(
    admin_client: Client,
) -> None:
    record = enqueue_with_secrets()
    admin_client.post(admin_url("taskrecord_cancel", record.id))
    admin_client.post(admin_url("taskrecord_retry", record.id))

    history = admin_client.get(admin_url("taskrecord_history", record.id)).content.decode()
    again = TaskRecord.objects.get(retry_of_id=UUID(str(record.id)))

    assert "Cancelled (was ready)." in history
    for secret in ALL_SECRETS:
        assert secret not in history
    assert again.kwargs == record.kwargs


@pytest.mark.django_db(transaction=True)
def test_worker__logs_no_argument_value(worker_process: WorkerFactory) -> None:
    """The worker logs task ids and paths, never arguments: proven at its most verbose."""
    failing = tasks.fail_value_error.enqueue(message="failed on purpose")
    done = tasks.echo.enqueue(password=SECRETS["password"], token=NESTED)
    worker = worker_process("--burst", "--concurrency", "1", "-v", "3")

    assert worker.wait() == 0
    states = dict(TaskRecord.objects.values_list("id", "state"))
    assert states[UUID(failing.id)] == State.FAILED
    assert states[UUID(done.id)] == State.SUCCEEDED
    output = worker.output()
    assert f"task failed task_id={failing.id}" in output  # the lines are there, and
    assert f"task succeeded task_id={done.id}" in output
    assert SECRETS["password"] not in output  # no argument in them
    assert NESTED not in output
