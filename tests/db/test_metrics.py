"""The Prometheus endpoint: access by staff or token, and metrics parsed from its output."""

from __future__ import annotations

import builtins
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from taskmill.states import State
from tests.db import task_rows
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

URL = "/taskmill/metrics/"
PASSWORD = "pw"  # noqa: S105 - a test user
TOKEN = "a-metrics-token-long-enough"  # noqa: S105 - a test token


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics__queue_depth_running_counters_durations_and_workers(admin_client: Client) -> None:
    tasks.noop.enqueue()
    tasks.noop.enqueue()
    task_rows.running()
    task_rows.finished(State.SUCCEEDED, took=timedelta(seconds=2))
    task_rows.finished(State.FAILED, took=timedelta(seconds=30))
    task_rows.worker()

    response = admin_client.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    found = samples(response.content.decode())
    q = (("queue", "default"),)
    assert found[("taskmill_queue_depth", q)] == 2
    assert found[("taskmill_tasks_running", q)] == 1
    assert found[("taskmill_tasks_processed_total", q)] == 2
    assert found[("taskmill_tasks_failed_total", q)] == 1
    assert found[("taskmill_workers_alive", ())] == 1
    assert found[("taskmill_task_duration_seconds_count", q)] == 2
    assert found[("taskmill_task_duration_seconds_sum", q)] == pytest.approx(32)
    assert found[("taskmill_task_duration_seconds_bucket", (("le", "5.0"), *q))] == 1
    assert found[("taskmill_task_duration_seconds_bucket", (("le", "60.0"), *q))] == 2
    assert found[("taskmill_queue_oldest_due_age_seconds", q)] >= 0


def test_metrics__old_finished_tasks_stay_out_of_the_duration_window(admin_client: Client) -> None:
    task_rows.finished(State.SUCCEEDED, at=timezone.now() - timedelta(hours=3))
    found = samples(admin_client.get(URL).content.decode())
    q = (("queue", "default"),)
    assert found[("taskmill_tasks_processed_total", q)] == 1
    assert ("taskmill_task_duration_seconds_count", q) not in found


def test_metrics__anonymous_forbidden(client: Client) -> None:
    assert client.get(URL).status_code == 403


def test_metrics__staff_without_permission_forbidden(client: Client) -> None:
    client.force_login(User.objects.create_user("staff", password=PASSWORD, is_staff=True))
    assert client.get(URL).status_code == 403


@override_settings(TASKMILL={"METRICS_TOKEN": TOKEN})
def test_metrics__bearer_token_lets_a_scraper_in(client: Client) -> None:
    assert client.get(URL, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    wrong = client.get(URL, headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 403
    assert wrong["WWW-Authenticate"].startswith("Bearer")


def test_metrics__token_ignored_when_none_is_configured(client: Client) -> None:
    assert client.get(URL, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403


def test_metrics__without_prometheus_client_names_the_package(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_prometheus(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("prometheus_client"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_prometheus)
    response = admin_client.get(URL)
    assert response.status_code == 501
    assert b"prometheus_client" in response.content
    assert b"django-taskmill[prometheus]" in response.content
