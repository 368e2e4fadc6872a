"""The dashboard: who may see it, what it shows, that task data is escaped, the admin link."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from taskmill.states import State
from tests.db import task_rows
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

URL = "/taskmill/"
PASSWORD = "pw"  # noqa: S105 - a test user
ADMIN_URL = "/admin/taskmill/dashboard/"


@pytest.fixture
def staff_client(client: Client) -> Client:
    """A client logged in as staff without any permission."""
    user = User.objects.create_user("staff", password=PASSWORD, is_staff=True)
    client.force_login(user)
    return client


def _grant_view(client: Client) -> None:
    user = User.objects.get(username="staff")
    user.user_permissions.add(Permission.objects.get(codename="view_taskrecord"))


@pytest.mark.parametrize("url", [URL, ADMIN_URL])
def test_anonymous__redirected_to_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_without_permission__forbidden(staff_client: Client) -> None:
    assert staff_client.get(URL).status_code == 403


def test_staff_with_view_permission__sees_the_dashboard(staff_client: Client) -> None:
    _grant_view(staff_client)
    assert staff_client.get(URL).status_code == 200


def test_non_staff_with_permission__redirected(client: Client) -> None:
    user = User.objects.create_user("plain", password=PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="view_taskrecord"))
    client.force_login(user)
    assert client.get(URL).status_code == 302


def test_superuser__sees_counts_queues_progress_failures_and_workers(admin_client: Client) -> None:
    tasks.noop.enqueue()
    running = task_rows.running(progress={"done": 3, "total": 4, "message": "step three"})
    failed = task_rows.finished(State.FAILED, error="ValueError: disk full")
    task_rows.worker("worker-abc")

    response = admin_client.get(URL)

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-state="ready">1<' in page
    assert 'aria-valuenow="75"' in page
    assert "step three" in page
    assert str(running.id) in page
    assert "ValueError: disk full" in page
    assert str(failed.id) in page
    assert "worker-abc" in page
    assert "<svg" in page
    assert "<title>" in page  # a bar for the failure minute


def test_panels__refresh_fragment_without_the_admin_chrome(admin_client: Client) -> None:
    response = admin_client.get(URL, {"panels": "1"})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="taskmill-counts"' in page
    assert "<html" not in page


def test_task_output_and_errors_are_escaped(admin_client: Client) -> None:
    script = "<script>alert(1)</script>"
    task_rows.running(progress={"done": 1, "total": 2, "message": script})
    task_rows.finished(State.FAILED, error=f"ValueError: {script}")

    page = admin_client.get(URL).content.decode()

    assert script not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_admin_index__links_to_the_dashboard(admin_client: Client) -> None:
    page = admin_client.get("/admin/").content.decode()
    assert ADMIN_URL in page
    response = admin_client.get(ADMIN_URL)
    assert response.status_code == 200
    assert 'id="taskmill-panels"' in response.content.decode()


def test_admin_index__no_link_for_staff_without_permission(staff_client: Client) -> None:
    assert ADMIN_URL not in staff_client.get("/admin/").content.decode()


def test_task_ids__link_to_the_task_admin_when_it_is_installed(admin_client: Client) -> None:
    from django.urls import NoReverseMatch, reverse

    record = task_rows.running()
    page = admin_client.get(URL).content.decode()
    try:
        url: Any = reverse("admin:taskmill_taskrecord_change", args=[str(record.id)])
    except NoReverseMatch:
        url = None
    if url is None:
        assert "<a href" not in page.split('id="taskmill-running"')[1].split("</section>")[0]
    else:
        assert f'href="{url}"' in page
