"""The worker admin: host, pid, queues, heartbeat alive or stale, current tasks linked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.db import task_rows

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:taskmill_worker_changelist")


def test_list__shows_each_worker_its_health_and_current_tasks(admin_client: Client) -> None:
    task_rows.worker("worker-alive")
    task_rows.worker("worker-stale", beat=timezone.now() - timedelta(minutes=5))
    mine = task_rows.running(lease_owner="worker-alive")
    task_rows.running(lease_owner="someone-else")

    html = admin_client.get(CHANGELIST).content.decode()

    assert "host-a" in html
    assert "1234" in html
    assert 'class="taskmill-worker-alive"' in html
    assert 'class="taskmill-worker-stale"' in html
    task_url = reverse("admin:taskmill_taskrecord_change", args=[mine.pk])
    assert html.count(task_url) == 1


def test_detail__is_read_only(admin_client: Client) -> None:
    task_rows.worker("worker-1")
    change = reverse("admin:taskmill_worker_change", args=["worker-1"])

    html = admin_client.get(change).content.decode()

    assert "taskmill-worker-alive" in html
    assert admin_client.post(change, {"host": "elsewhere"}).status_code == 403
    assert admin_client.get(reverse("admin:taskmill_worker_add")).status_code == 403
