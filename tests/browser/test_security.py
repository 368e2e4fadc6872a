"""End to end: task content crafted to run script runs none in a real browser, neither on the
task page (rendered, then followed live) nor on the dashboard (rendered, then refreshed)."""

from __future__ import annotations

from typing import Final

import pytest
from django.urls import reverse
from playwright.sync_api import Dialog, Page, expect

from taskmill.states import State
from tests.browser.conftest import StaffSession
from tests.db import task_rows
from tests.db.rows import store_progress, write_chunk

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE: Final = (
    "<script>window.__owned = 1; alert(1)</script>"
    '"><img src=x onerror="window.__owned = 2; alert(2)">'
    '<svg onload="window.__owned = 3; alert(3)"></svg>'
)
WAIT_MS: Final = 15_000


def watch_dialogs(page: Page) -> list[str]:
    opened: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return opened


def assert_nothing_ran(page: Page, opened: list[str]) -> None:
    assert opened == []
    assert page.evaluate("window.__owned === undefined")
    assert page.locator("img[src=x], .taskmill-log svg, #taskmill-panels svg[onload]").count() == 0


def test_hostile_output__runs_no_script_on_the_task_page_or_the_dashboard(
    staff_session: StaffSession,
) -> None:
    running = task_rows.running()
    store_progress(str(running.id), 1, 2, HOSTILE)
    write_chunk(str(running.id), f"rendered {HOSTILE}\n")
    task_rows.finished(State.FAILED, error=f"ValueError: {HOSTILE}")
    opened = watch_dialogs(staff_session.page)

    page = staff_session.open(reverse("admin:taskmill_taskrecord_change", args=[running.id]))
    log = page.locator("pre.taskmill-log")
    expect(log).to_contain_text(f"rendered {HOSTILE}")
    # What arrives while the page is open is inserted by its script.
    write_chunk(str(running.id), f"followed {HOSTILE}\n", stream="stderr")
    store_progress(str(running.id), 2, 3, f"live {HOSTILE}")
    expect(log).to_contain_text(f"followed {HOSTILE}", timeout=WAIT_MS)
    expect(page.locator(".field-progress_display")).to_contain_text(f"live {HOSTILE}")
    assert_nothing_ran(page, opened)

    dashboard = staff_session.open(reverse("taskmill_dashboard:index") + "?refresh=1")
    panels = dashboard.locator("#taskmill-panels")
    expect(panels).to_contain_text(f"ValueError: {HOSTILE}")
    # The refresh puts the panels' HTML in with innerHTML: wait until it has happened.
    dashboard.evaluate("document.querySelector('#taskmill-failures').dataset.old = '1'")
    expect(dashboard.locator("#taskmill-failures:not([data-old])")).to_have_count(
        1, timeout=WAIT_MS
    )
    expect(panels).to_contain_text(f"ValueError: {HOSTILE}")
    assert_nothing_ran(dashboard, opened)
