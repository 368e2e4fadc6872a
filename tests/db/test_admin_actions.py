"""Cancel, retry and delete in the task admin: actions, buttons, permissions, history."""

from __future__ import annotations

from uuid import UUID

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from taskmill.models import TaskRecord
from taskmill.states import State
from tests.db.rows import set_state
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:taskmill_taskrecord_changelist")


def url(name: str, task_id: str) -> str:
    return reverse(f"admin:taskmill_taskrecord_{name}", args=[task_id])


def staff_with(client: Client, *codenames: str) -> Client:
    """Log `client` in as staff holding view_taskrecord and these permissions."""
    user = User.objects.create_user("staff", password="pw", is_staff=True)  # noqa: S106 - test
    for codename in ("view_taskrecord", *codenames):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client


def act(client: Client, action: str, *ids: str, **extra: str) -> str:
    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": list(ids), **extra}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def history_of(task_id: str) -> list[str]:
    entries = LogEntry.objects.filter(object_id=task_id).order_by("action_time")
    return [entry.get_change_message() for entry in entries]


def test_cancel_action__cancels_queued_tasks_and_reports_finished_ones(
    admin_client: Client,
) -> None:
    queued, done = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(done, State.SUCCEEDED, attempts=1)

    html = act(admin_client, "cancel_selected", queued.id, done.id)

    assert TaskRecord.objects.get(id=queued.id).state == State.CANCELLED
    assert TaskRecord.objects.get(id=done.id).state == State.SUCCEEDED
    assert "Cancelled 1 task(s)" in html
    assert f"1 task(s) had already finished and were left as they are: {done.id}" in html
    assert history_of(queued.id) == ["Cancelled (was ready)."]
    assert history_of(done.id) == []


def test_retry_action__enqueues_failed_tasks_again_and_refuses_others(
    admin_client: Client,
) -> None:
    failed, ready = tasks.add.enqueue(1, 2), tasks.noop.enqueue()
    set_state(failed, State.FAILED, attempts=1)

    html = act(admin_client, "retry_selected", failed.id, ready.id)

    again = TaskRecord.objects.get(retry_of_id=UUID(failed.id))
    assert again.state == State.READY
    assert again.args == [1, 2]
    assert f"Retried 1 task(s) as new task(s): {again.id}" in html
    assert f"left as they are: {ready.id} (ready)" in html
    assert history_of(failed.id) == [f"Retried as {again.id}."]


def test_delete_action__deletes_finished_tasks_only_after_confirmation(
    admin_client: Client,
) -> None:
    failed, running = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(failed, State.FAILED, attempts=1)
    set_state(running, State.RUNNING, attempts=1)

    confirmation = act(admin_client, "delete_selected", failed.id, running.id)
    assert "Are you sure you want to delete" in confirmation
    assert TaskRecord.objects.filter(id=failed.id).exists()

    html = act(admin_client, "delete_selected", failed.id, running.id, post="yes")

    assert not TaskRecord.objects.filter(id=failed.id).exists()
    assert TaskRecord.objects.filter(id=running.id).exists()
    assert "1 queued or running task(s) were not deleted: cancel them first." in html
    assert LogEntry.objects.filter(object_id=failed.id, action_flag=3).exists()  # DELETION


def test_cancel_button__cancels_and_comes_back_to_the_task(admin_client: Client) -> None:
    queued = tasks.noop.enqueue()

    response = admin_client.post(url("cancel", queued.id))

    assert response.status_code == 302
    assert response["Location"] == url("change", queued.id)
    assert TaskRecord.objects.get(id=queued.id).state == State.CANCELLED
    assert history_of(queued.id) == ["Cancelled (was ready)."]


def test_retry_button__goes_to_the_new_task(admin_client: Client) -> None:
    cancelled = tasks.noop.enqueue()
    set_state(cancelled, State.CANCELLED, attempts=0)

    response = admin_client.post(url("retry", cancelled.id))

    again = TaskRecord.objects.get(retry_of_id=UUID(cancelled.id))
    assert response["Location"] == url("change", str(again.id))


def test_retry_button__a_running_task_is_refused_with_a_message(admin_client: Client) -> None:
    running = tasks.noop.enqueue()
    set_state(running, State.RUNNING, attempts=1)

    response = admin_client.post(url("retry", running.id), follow=True)

    assert "Only failed or cancelled tasks can be retried" in response.content.decode()
    assert not TaskRecord.objects.filter(retry_of_id=UUID(running.id)).exists()


def test_buttons__shown_by_state(admin_client: Client) -> None:
    running, failed = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(running, State.RUNNING, attempts=1)
    set_state(failed, State.FAILED, attempts=1)

    running_page = admin_client.get(url("change", running.id)).content.decode()
    failed_page = admin_client.get(url("change", failed.id)).content.decode()

    assert 'id="taskmill-cancel"' in running_page
    assert 'id="taskmill-retry"' not in running_page
    assert 'id="taskmill-cancel"' not in failed_page
    assert 'id="taskmill-retry"' in failed_page
    assert url("delete", failed.id) in failed_page
    assert url("delete", running.id) not in running_page


def test_buttons__the_buttons_are_a_post(admin_client: Client) -> None:
    queued = tasks.noop.enqueue()

    assert admin_client.get(url("cancel", queued.id)).status_code == 405
    assert TaskRecord.objects.get(id=queued.id).state == State.READY


def test_permissions__a_viewer_sees_no_action_or_button_and_gets_403(client: Client) -> None:
    failed, queued = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(failed, State.FAILED, attempts=1)
    viewer = staff_with(client)

    changelist = viewer.get(CHANGELIST).content.decode()
    failed_page = viewer.get(url("change", failed.id)).content.decode()
    queued_page = viewer.get(url("change", queued.id)).content.decode()

    for name in ("cancel_selected", "retry_selected", "delete_selected"):
        assert f'value="{name}"' not in changelist
    assert 'id="taskmill-retry"' not in failed_page
    assert 'id="taskmill-cancel"' not in queued_page
    assert viewer.post(url("cancel", queued.id)).status_code == 403
    assert viewer.post(url("retry", failed.id)).status_code == 403
    assert viewer.post(url("delete", failed.id), {"post": "yes"}).status_code == 403
    for name in ("cancel_selected", "retry_selected", "delete_selected"):
        posted = {"action": name, "_selected_action": [queued.id, failed.id], "post": "yes"}
        assert viewer.post(CHANGELIST, posted).status_code == 403
    assert TaskRecord.objects.get(id=queued.id).state == State.READY
    assert TaskRecord.objects.filter(id=failed.id).exists()
    assert not TaskRecord.objects.filter(retry_of_id=UUID(failed.id)).exists()


def test_permissions__each_action_needs_its_own(client: Client) -> None:
    failed, queued = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(failed, State.FAILED, attempts=1)
    canceller = staff_with(client, "cancel_task")

    changelist = canceller.get(CHANGELIST).content.decode()

    assert 'value="cancel_selected"' in changelist
    assert 'value="retry_selected"' not in changelist
    assert 'value="delete_selected"' not in changelist
    assert canceller.post(url("retry", failed.id)).status_code == 403
    assert canceller.post(url("cancel", queued.id)).status_code == 302
    assert TaskRecord.objects.get(id=queued.id).state == State.CANCELLED


def test_permissions__retry_and_delete_permissions(client: Client) -> None:
    failed = tasks.noop.enqueue()
    set_state(failed, State.FAILED, attempts=1)
    operator = staff_with(client, "retry_task", "delete_taskrecord")

    changelist = operator.get(CHANGELIST).content.decode()
    assert 'value="retry_selected"' in changelist
    assert 'value="delete_selected"' in changelist
    assert 'value="cancel_selected"' not in changelist

    assert operator.post(url("retry", failed.id)).status_code == 302
    assert operator.post(url("delete", failed.id), {"post": "yes"}).status_code == 302
    assert not TaskRecord.objects.filter(id=failed.id).exists()
