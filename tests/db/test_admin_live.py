"""The task page's live log endpoint: new chunks after a cursor, state, progress; escaping."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from taskmill.output import FOLLOW_BATCH_SIZE
from taskmill.states import State
from tests.db.rows import set_state, store_progress, write_chunk
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('x')</script>"


def log_url(task_id: str) -> str:
    return reverse("admin:taskmill_taskrecord_log", args=[task_id])


def test_log__returns_chunks_after_the_cursor_with_state_and_progress(
    admin_client: Client,
) -> None:
    result = tasks.noop.enqueue()
    set_state(result, State.RUNNING, attempts=1)
    write_chunk(result, "first\n")
    write_chunk(result, "sec")
    store_progress(result, 1, 4, "a quarter")

    everything = admin_client.get(log_url(result.id)).json()
    after_first = admin_client.get(log_url(result.id), {"after": "1:0"}).json()
    nothing_new = admin_client.get(log_url(result.id), {"after": everything["cursor"]}).json()

    assert [chunk["text"] for chunk in everything["chunks"]] == ["first\n", "sec"]
    assert everything["cursor"] == "1:1"
    assert everything["state"] == "running"
    assert everything["finished"] is False
    assert everything["progress"] == {
        "done": 1,
        "total": 4,
        "percent": 25,
        "message": "a quarter",
    }
    assert [chunk["text"] for chunk in after_first["chunks"]] == ["sec"]
    assert nothing_new["chunks"] == []
    assert nothing_new["cursor"] == "1:1"


def test_log__a_finished_task_says_so_once_every_chunk_was_read(admin_client: Client) -> None:
    result = tasks.noop.enqueue()
    set_state(result, State.SUCCEEDED, attempts=1)
    for number in range(FOLLOW_BATCH_SIZE + 1):
        write_chunk(result, f"{number}\n")

    first = admin_client.get(log_url(result.id)).json()
    rest = admin_client.get(log_url(result.id), {"after": first["cursor"]}).json()

    assert (len(first["chunks"]), first["more"], first["finished"]) == (
        FOLLOW_BATCH_SIZE,
        True,
        False,
    )
    assert (len(rest["chunks"]), rest["more"], rest["finished"]) == (1, False, True)


def test_log__a_bad_cursor_is_a_400_and_an_unknown_task_a_404(admin_client: Client) -> None:
    result = tasks.noop.enqueue()

    assert admin_client.get(log_url(result.id), {"after": "x"}).status_code == 400
    assert admin_client.get(log_url("0" * 32)).status_code == 404


def test_log__needs_the_view_permission(client: Client) -> None:
    result = tasks.noop.enqueue()
    client.force_login(User.objects.create_user("nobody", password="pw", is_staff=True))  # noqa: S106 - test

    assert client.get(log_url(result.id)).status_code == 403


def test_output_and_arguments__are_shown_as_text_not_markup(admin_client: Client) -> None:
    result = tasks.echo.enqueue(SCRIPT, note=SCRIPT)
    set_state(result, State.RUNNING, attempts=1)
    write_chunk(result, f"{SCRIPT}\n")
    write_chunk(result, f"{SCRIPT}\n", stream="stderr")
    store_progress(result, 1, 2, SCRIPT)

    page = admin_client.get(reverse("admin:taskmill_taskrecord_change", args=[result.id]))
    html = page.content.decode()
    changelist = admin_client.get(reverse("admin:taskmill_taskrecord_changelist")).content.decode()
    response = admin_client.get(log_url(result.id))

    assert SCRIPT not in html
    assert SCRIPT not in changelist
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    # The endpoint is JSON (text for the page's script to insert as text nodes), never HTML.
    assert response["Content-Type"] == "application/json"
    assert response.json()["chunks"][0]["text"] == f"{SCRIPT}\n"
    assert response.json()["progress"]["message"] == SCRIPT
    assert "textContent" in html
    assert "innerHTML" not in html


def test_detail__a_running_task_page_follows_from_where_it_was_rendered(
    admin_client: Client,
) -> None:
    running, finished = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(running, State.RUNNING, attempts=1)
    set_state(finished, State.SUCCEEDED, attempts=1)
    write_chunk(running, "one\n")
    write_chunk(running, "two\n")
    write_chunk(finished, "done\n")

    html = admin_client.get(
        reverse("admin:taskmill_taskrecord_change", args=[running.id])
    ).content.decode()
    finished_html = admin_client.get(
        reverse("admin:taskmill_taskrecord_change", args=[finished.id])
    ).content.decode()

    assert 'data-cursor="1:1"' in html
    assert f'data-url="{log_url(running.id)}"' in html
    assert "data-url=" not in finished_html  # nothing to follow


def test_detail__a_line_without_its_newline_yet_is_marked_for_the_script(
    admin_client: Client,
) -> None:
    result = tasks.noop.enqueue()
    set_state(result, State.RUNNING, attempts=1)
    write_chunk(result, "whole\n<i>half")

    html = admin_client.get(
        reverse("admin:taskmill_taskrecord_change", args=[result.id])
    ).content.decode()

    assert 'data-partial="1:stdout" data-text="&lt;i&gt;half"' in html
    assert html.count("data-partial=") == 1
    assert 'data-cursor="1:0"' in html
