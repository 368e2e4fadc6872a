"""The dashboard in a real browser: counts, a running task's progress updating by itself."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from taskmill.models import TaskRecord
from taskmill.states import State
from tests.browser.conftest import StaffSession
from tests.db import task_rows
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

# A few refresh periods: a deadline for the condition, not a delay.
REFRESH_WAIT_MS = 15_000


def test_dashboard__shows_counts_and_a_running_tasks_progress_as_it_changes(
    staff_session: StaffSession,
) -> None:
    tasks.noop.enqueue()
    tasks.build_report.enqueue(1)
    running = task_rows.running(progress={"done": 1, "total": 4, "message": "<b>step one</b>"})
    task_rows.finished(State.FAILED, error="ValueError: the printer is on fire")
    task_rows.worker("worker-browser")

    page = staff_session.open("/admin/")
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url("**/admin/taskmill/dashboard/")
    page = staff_session.open("/taskmill/?refresh=1")

    expect(page.locator('#taskmill-counts tfoot [data-state="ready"]')).to_have_text("2")
    expect(page.locator('#taskmill-counts tfoot [data-state="failed"]')).to_have_text("1")
    row = page.locator(f'#taskmill-running tr[data-task-id="{running.id}"]')
    expect(row.locator(".taskmill-percent")).to_have_text("25%")
    expect(row.locator(".taskmill-message")).to_have_text("<b>step one</b>")  # as text
    expect(page.locator("#taskmill-failures")).to_contain_text("the printer is on fire")
    expect(page.locator("#taskmill-workers")).to_contain_text("worker-browser")
    expect(page.locator("#taskmill-throughput svg.failures rect")).to_have_count(1)
    staff_session.screenshot("dashboard")

    TaskRecord.objects.filter(id=running.id).update(
        progress={"done": 3, "total": 4, "message": "step three"}
    )

    # The page refreshes its panels by itself (every second with ?refresh=1).
    expect(row.locator(".taskmill-percent")).to_have_text("75%", timeout=REFRESH_WAIT_MS)
    expect(row.locator(".taskmill-message")).to_have_text("step three")
    staff_session.screenshot("dashboard-refreshed")
