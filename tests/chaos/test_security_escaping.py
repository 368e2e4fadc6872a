"""What a task controls (output, arguments, result, errors, progress message) is shown as text:
escaped in the admin and the dashboard, markup-free JSON for the live log, and without
terminal control sequences on the command line."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Final

import pytest
from django.test import Client
from django.urls import reverse

from taskmill.models import Schedule, TaskRecord
from taskmill.states import State
from tests.chaos.pages import admin_url, run_cli
from tests.db.rows import set_state, store_progress, write_chunk
from tests.testapp import tasks
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db

PAYLOADS: Final = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'><svg onload=alert(3)>",
    "</pre></span><script>alert(4)</script>",
)
HOSTILE: Final = " ".join(PAYLOADS)
# A tag one of the payloads opens: none may reach a page as markup.
TAGS: Final = re.compile(r"<(script>alert|img src=x|svg onload)")


def hostile_task(state: State) -> TaskRecord:
    """A task whose every task-controlled field holds the payloads."""
    article = Article.objects.create(title="owner")
    result = tasks.echo.using(for_object=article).enqueue(
        HOSTILE, note=HOSTILE, nested=[{"x": HOSTILE}]
    )
    errors = [
        {
            "exception_class_path": "builtins.ValueError",
            "traceback": f"Traceback (most recent call last):\n {HOSTILE}\nValueError: {HOSTILE}",
            "attempt": 1,
        }
    ]
    set_state(result, state, attempts=1, errors=errors, return_value={"echo": HOSTILE})
    store_progress(result, 1, 2, HOSTILE)
    for stream in ("stdout", "stderr", "log"):
        write_chunk(result, f"{HOSTILE}\n", stream=stream)
    write_chunk(result, HOSTILE)  # a line still waiting for its newline: a data- attribute
    return TaskRecord.objects.get(id=result.id)


def assert_text_only(page: str, where: str) -> None:
    assert not TAGS.search(page), (where, TAGS.search(page))
    for payload in PAYLOADS:
        assert payload not in page, (where, payload)


@pytest.mark.parametrize("state", [State.RUNNING, State.FAILED])
def test_admin_and_dashboard__show_task_content_as_text(admin_client: Client, state: State) -> None:
    record = hostile_task(state)
    dashboard = reverse("taskmill_dashboard:index")

    pages = {
        "list": admin_client.get(admin_url("taskrecord_changelist")),
        "task page": admin_client.get(admin_url("taskrecord_change", record.id)),
        "history": admin_client.get(
            reverse("admin:testapp_article_change", args=[record.object_id])
        ),
        "dashboard": admin_client.get(dashboard),
        "dashboard panels": admin_client.get(dashboard, {"panels": "1"}),
    }

    for where, response in pages.items():
        assert response.status_code == 200, where
        assert_text_only(response.content.decode(), where)
    # The escaped form is there: the payload is shown, as text.
    assert html.escape(PAYLOADS[1]) in pages["task page"].content.decode()
    assert html.escape(PAYLOADS[1]) in pages["dashboard panels"].content.decode()


def test_live_log__is_json_without_markup(admin_client: Client) -> None:
    record = hostile_task(State.RUNNING)

    response = admin_client.get(admin_url("taskrecord_log", record.id))

    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    body = response.content.decode()
    assert "<" not in body
    assert ">" not in body
    data = json.loads(body)
    assert data["chunks"][0]["text"] == f"{HOSTILE}\n"  # the same text, for the script
    assert data["progress"]["message"] == HOSTILE


def test_schedule_page__shows_arguments_as_text(admin_client: Client) -> None:
    schedule = Schedule.objects.create(
        name="hostile",
        task_path="tests.testapp.tasks.echo",
        args=[HOSTILE],
        kwargs={"n": HOSTILE},
        cron="0 3 * * *",
    )

    page = admin_client.get(admin_url("schedule_change", schedule.pk)).content.decode()

    assert_text_only(page, "schedule page")
    assert html.escape(PAYLOADS[1]) in page


TEMPLATES: Final = Path(__file__).resolve().parents[2] / "taskmill" / "templates"
# Script calls that parse HTML; each use must be listed with why it is safe.
HTML_SINKS: Final = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")
ALLOWED_SINKS: Final = {
    # The panels are the server's own template, escaped like the page itself (checked by
    # test_admin_and_dashboard__show_task_content_as_text on `?panels=1`).
    ("taskmill/dashboard/index.html", ".then(function (html) { box.innerHTML = html; })"),
}


def test_scripts__insert_task_content_as_text_only() -> None:
    found = {
        (path.relative_to(TEMPLATES).as_posix(), line.strip())
        for path in TEMPLATES.rglob("*.html")
        for line in path.read_text().splitlines()
        if HTML_SINKS.search(line)
    }
    task_page = (TEMPLATES / "admin/taskmill/taskrecord/change_form.html").read_text()

    assert found <= ALLOWED_SINKS
    assert "textContent" in task_page
    assert "createTextNode" in task_page


# Clear the screen, retitle the window, move up and overwrite, a right-to-left override.
TERMINAL_TRICKS: Final = "\x1b[2J\x1b]0;owned\x07\x1b[1A\rhidden\u202eevil\x9b"
SHOWN_AS: Final = "\\x1b[2J\\x1b]0;owned\\x07\\x1b[1A\\rhidden\\u202eevil\\x9b"
RAW_CONTROLS: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_cli__task_content_cannot_drive_the_terminal() -> None:
    result = tasks.echo.enqueue(TERMINAL_TRICKS, note=TERMINAL_TRICKS)
    errors = [
        {
            "exception_class_path": "builtins.ValueError",
            "traceback": f"Traceback (most recent call last):\nValueError: {TERMINAL_TRICKS}\n",
            "attempt": 1,
        }
    ]
    set_state(result, State.FAILED, attempts=1, errors=errors, return_value=TERMINAL_TRICKS)
    store_progress(result, 1, 2, TERMINAL_TRICKS)
    write_chunk(result, f"{TERMINAL_TRICKS}\n")
    write_chunk(result, f"{TERMINAL_TRICKS}\n", stream="stderr")

    outputs = {
        "logs": run_cli("logs", result.id),
        "show": run_cli("show", result.id),
        "list": run_cli("list"),
        "progress": run_cli("progress", result.id),
        "logs --json": run_cli("logs", result.id, "--json"),
        "show --json": run_cli("show", result.id, "--json"),
        "list --json": run_cli("list", "--json"),
    }

    for where, text in outputs.items():
        assert not RAW_CONTROLS.search(text), where
    assert f"  {SHOWN_AS}\n" in outputs["logs"]
    assert f"[stderr] {SHOWN_AS}\n" in outputs["logs"]
    assert f"ValueError: {SHOWN_AS}" in outputs["show"]
    assert re.search(rf"return value +{re.escape(SHOWN_AS)}\n", outputs["show"])
    assert SHOWN_AS in outputs["progress"]
    # JSON keeps the exact text, as escapes a terminal doesn't act on.
    assert json.loads(outputs["show --json"])["return_value"] == TERMINAL_TRICKS
    assert json.loads(outputs["logs --json"].splitlines()[0])["text"] == TERMINAL_TRICKS
