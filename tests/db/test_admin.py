"""The task admin's list and detail page, and the per-object history inline."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from taskmill.admin.history import HISTORY_LIMIT
from taskmill.admin.tasks import LOG_LINES_SHOWN
from taskmill.models import TaskRecord
from taskmill.operations import retry_task
from taskmill.states import State
from tests.db.rows import set_state, store_progress, write_chunk
from tests.testapp import tasks
from tests.testapp.models import Article, Token

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:taskmill_taskrecord_changelist"


def change_url(task_id: str) -> str:
    return reverse("admin:taskmill_taskrecord_change", args=[task_id])


def page(client: Client, url: str, **params: Any) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_changelist__lists_tasks_with_state_badge_and_progress(admin_client: Client) -> None:
    running = tasks.add.enqueue(1, 2)
    set_state(running, State.RUNNING, attempts=1)
    store_progress(running, 3, 4, "rows")

    html = page(admin_client, reverse(CHANGELIST))

    assert running.id in html
    assert "tests.testapp.tasks.add" in html
    assert "taskmill-state-running" in html
    assert '<progress max="100" value="75"' in html
    assert "75% rows" in html


def test_changelist__query_count_does_not_grow_with_the_rows(
    admin_client: Client, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    article = Article.objects.create(title="A")
    for number in range(30):
        result = tasks.title_of.using(for_object=article).enqueue(article)
        store_progress(result, number, 30)

    # Session, user, the page of rows; no query per row.
    with django_assert_max_num_queries(8):
        html = page(admin_client, reverse(CHANGELIST))

    assert html.count("<progress") == 30


def test_changelist__filters_by_state_and_searches_by_id_and_path(admin_client: Client) -> None:
    failed, ready = tasks.noop.enqueue(), tasks.add.enqueue(1, 1)
    set_state(failed, State.FAILED, attempts=1)
    url = reverse(CHANGELIST)

    by_state = page(admin_client, url, state__exact="failed")
    by_id = page(admin_client, url, q=ready.id)
    by_path = page(admin_client, url, q="testapp.tasks.add")
    by_junk = page(admin_client, url, q="not an id")

    assert failed.id in by_state
    assert ready.id not in by_state
    assert ready.id in by_id
    assert failed.id not in by_id
    assert ready.id in by_path
    assert failed.id not in by_path
    assert failed.id not in by_junk


def test_detail__shows_call_outcome_errors_progress_dependencies_and_log(
    admin_client: Client,
) -> None:
    dependency = tasks.noop.enqueue()
    set_state(dependency, State.FAILED, attempts=1)
    result = tasks.echo.using(depends_on=[dependency], on_dependency_failure="run").enqueue(
        "<b>arg</b>", size=7
    )
    TaskRecord.objects.filter(id=result.id).update(
        errors=[
            {
                "exception_class_path": "builtins.ValueError",
                "traceback": "Traceback (most recent call last):\nValueError: <bad>\n",
                "attempt": 1,
            }
        ]
    )
    set_state(result, State.RUNNING, attempts=2)
    store_progress(result, 1, 2, "half")
    write_chunk(result, "out line\n")
    write_chunk(result, "err line\n", stream="stderr")
    write_chunk(result, "INFO app: logged\n", stream="log")
    write_chunk(result, "output truncated: the log cap was reached\n", stream="marker")
    write_chunk(result, "second attempt\n", attempt=2)

    html = page(admin_client, change_url(result.id))

    assert "&lt;b&gt;arg&lt;/b&gt;" in html  # args, escaped
    assert "&quot;size&quot;: 7" in html
    assert "builtins.ValueError" in html
    assert "ValueError: &lt;bad&gt;" in html
    assert "50% half" in html
    assert dependency.id in html
    assert "taskmill-state-failed" in html
    assert 'class="taskmill-log-stdout"' in html
    assert "out line" in html
    assert 'class="taskmill-log-stderr"' in html
    assert "[stderr] err line" in html
    assert "[log] INFO app: logged" in html
    assert 'class="taskmill-log-marker"' in html
    assert "[marker] output truncated: the log cap was reached" in html
    assert "--- attempt 2 ---" in html


def test_detail__lists_attempts_a_shutdown_handed_back(admin_client: Client) -> None:
    result = tasks.noop.enqueue()
    note = {"attempt": 1, "worker_id": "host:12:abc", "handed_back_at": "2026-12-02T19:00:00+00:00"}
    TaskRecord.objects.filter(id=result.id).update(handed_back=[note, {**note, "attempt": 2}])

    html = page(admin_client, change_url(result.id))

    assert "<p>attempt 1 by host:12:abc at 2026-12-02T19:00:00+00:00</p>" in html
    assert "<p>attempt 2 by host:12:abc" in html


def test_detail__shows_the_end_of_a_long_log(admin_client: Client) -> None:
    result = tasks.noop.enqueue()
    write_chunk(result, "".join(f"line {number}\n" for number in range(LOG_LINES_SHOWN + 5)))

    html = page(admin_client, change_url(result.id))

    assert "5 earlier lines not shown" in html
    assert "line 4</span>" not in html
    assert "line 5</span>" in html
    assert f"line {LOG_LINES_SHOWN + 4}</span>" in html


def test_detail__a_task_without_output_says_so(admin_client: Client) -> None:
    finished, queued = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(finished, State.SUCCEEDED, attempts=1)

    assert "No output captured." in page(admin_client, change_url(finished.id))
    assert "No output captured yet." in page(admin_client, change_url(queued.id))


def test_admin__is_read_only(admin_client: Client) -> None:
    result = tasks.noop.enqueue()

    assert admin_client.get(reverse("admin:taskmill_taskrecord_add")).status_code == 403
    response = admin_client.post(change_url(result.id), {"task_path": "other"})
    assert response.status_code == 403
    delete = reverse("admin:taskmill_taskrecord_delete", args=[result.id])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert TaskRecord.objects.get(id=result.id).task_path == "tests.testapp.tasks.noop"


def test_admin__the_view_permission_is_enough_to_read(client: Client) -> None:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)  # noqa: S106 - test
    user.user_permissions.add(Permission.objects.get(codename="view_taskrecord"))
    client.force_login(user)
    result = tasks.noop.enqueue()

    assert result.id in page(client, reverse(CHANGELIST))
    assert result.id in page(client, change_url(result.id))


# --- per-object history -------------------------------------------------------------------


def test_history_inline__lists_the_objects_latest_tasks_newest_first_with_links(
    admin_client: Client,
) -> None:
    article, other = Article.objects.create(title="A"), Article.objects.create(title="B")
    results = [
        tasks.title_of.using(for_object=article).enqueue(article) for _ in range(HISTORY_LIMIT + 2)
    ]
    elsewhere = tasks.title_of.using(for_object=other).enqueue(other)
    set_state(results[-1], State.RUNNING, attempts=1)

    html = page(admin_client, reverse("admin:testapp_article_change", args=[article.pk]))

    shown = sorted(
        (r for r in results if change_url(r.id) in html), key=lambda r: html.index(change_url(r.id))
    )
    assert [r.id for r in shown] == [r.id for r in reversed(results[2:])]
    assert elsewhere.id not in html
    assert "taskmill-state-running" in html
    assert f"task history (latest {HISTORY_LIMIT})" in html.lower()


def test_history_mixin__adds_the_inline_to_a_change_page(admin_client: Client) -> None:
    token = Token.objects.create(id=uuid.uuid4(), label="t")
    result = tasks.echo.using(for_object=token).enqueue()

    html = page(admin_client, reverse("admin:testapp_token_change", args=[token.pk]))

    assert change_url(result.id) in html
    assert "task history" in html.lower()
    # The add page has no object, so no history.
    assert "task history" not in page(admin_client, reverse("admin:testapp_token_add")).lower()


def test_changelist__shows_priority_duration_and_the_owner_linked(admin_client: Client) -> None:
    article = Article.objects.create(title="A")
    result = tasks.title_of.using(for_object=article, priority=7).enqueue(article)
    now = timezone.now()
    set_state(result, State.SUCCEEDED, started_at=now - timedelta(seconds=75), finished_at=now)

    html = page(admin_client, reverse(CHANGELIST))

    assert '<td class="field-priority">7</td>' in html
    assert "1m 15s" in html
    owner_url = reverse("admin:testapp_article_change", args=[article.pk])
    assert f'<a href="{owner_url}">testapp.article {article.pk}</a>' in html


def test_detail__links_the_owner_and_the_task_it_retries(admin_client: Client) -> None:
    article = Article.objects.create(title="A")
    first = tasks.title_of.using(for_object=article).enqueue(article)
    set_state(first, State.FAILED, attempts=1)
    again = retry_task(first.id)

    html = page(admin_client, change_url(again.id))

    assert reverse("admin:testapp_article_change", args=[article.pk]) in html
    assert f'<a href="{change_url(first.id)}">{first.id}</a>' in html
