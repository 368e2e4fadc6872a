"""The task and schedule admin in a real browser, against a live server and a real worker:
a running task's log and progress follow by themselves, cancel, retry, toggle a schedule."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from taskmill.models import Schedule, TaskRecord
from taskmill.states import State
from tests.browser.conftest import StaffSession
from tests.db import task_rows
from tests.db.rows import write_chunk
from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# Deadlines for conditions, not delays: the page polls every second.
FOLLOW_WAIT_MS = 15_000
CANCEL_WAIT_MS = 20_000


def change_path(task_id: object) -> str:
    return reverse("admin:taskmill_taskrecord_change", args=[str(task_id)])


def last_line_number(page: Page) -> int:
    numbers = re.findall(r"line (\d+) ", page.locator("pre.taskmill-log").inner_text())
    return max(map(int, numbers), default=0)


def test_task_page__follows_a_running_tasks_log_and_progress_then_cancels_it(
    staff_session: StaffSession, worker_process: WorkerFactory, tmp_path: Path
) -> None:
    worker_process("--concurrency", "1")
    result = tasks.write_until_released.enqueue(str(tmp_path))
    wait_until(
        lambda: TaskRecord.objects.filter(
            id=result.id, state=State.RUNNING, progress__isnull=False
        ).exists(),
        timeout=30,
        message="the task never started reporting progress",
    )

    page = staff_session.open(change_path(result.id))
    badge = page.locator(".field-state_display .taskmill-state")
    expect(badge).to_have_text("running")
    shown = last_line_number(page)

    # New lines and progress arrive without reloading the page.
    later = shown + 5
    log = page.locator("pre.taskmill-log")
    expect(log).to_contain_text(f"line {later} <b>not bold</b>", timeout=FOLLOW_WAIT_MS)
    expect(page.locator(".field-progress_display .taskmill-progress")).not_to_contain_text(
        f"at line {shown}"
    )
    expect(page.locator(".field-progress_display progress")).to_have_count(1)
    expect(log.locator("b")).to_have_count(0)  # output is text, never markup
    staff_session.screenshot("task-running")

    page.click("#taskmill-cancel")

    expect(page.locator(".messagelist")).to_contain_text("Cancelled 1 task(s)")
    expect(badge).to_have_text("cancelled", timeout=CANCEL_WAIT_MS)
    expect(page.locator("#taskmill-retry")).to_be_visible()  # the page reloaded at the end
    # Django shows a message once; the reload must not have taken it away.
    expect(page.locator(".messagelist")).to_contain_text("Cancelled 1 task(s)")
    assert TaskRecord.objects.get(id=result.id).state == State.CANCELLED
    staff_session.screenshot("task-cancelled")


def test_task_page__retries_a_failed_task_as_a_new_one(staff_session: StaffSession) -> None:
    failed = task_rows.finished(State.FAILED, error="ValueError: the printer is on fire")

    page = staff_session.open(change_path(failed.id))
    expect(page.locator(".field-errors_display")).to_contain_text("the printer is on fire")
    staff_session.screenshot("task-failed")
    page.click("#taskmill-retry")

    expect(page.locator(".messagelist")).to_contain_text("Retried 1 task(s)")
    again = TaskRecord.objects.get(retry_of_id=failed.id)
    page.wait_for_url(f"**{change_path(again.id)}")
    expect(page.locator(".field-retry_of_display a")).to_have_text(str(failed.id))
    expect(page.locator(".field-state_display .taskmill-state")).to_have_text("ready")


def test_task_list__cancels_selected_tasks_with_the_action(staff_session: StaffSession) -> None:
    queued = tasks.noop.enqueue()

    page = staff_session.open(reverse("admin:taskmill_taskrecord_changelist"))
    page.check(f'input[name="_selected_action"][value="{queued.id}"]')
    page.select_option('select[name="action"]', "cancel_selected")
    page.click('button[name="index"]')

    expect(page.locator(".messagelist")).to_contain_text("Cancelled 1 task(s)")
    assert TaskRecord.objects.get(id=UUID(queued.id)).state == State.CANCELLED
    staff_session.screenshot("task-list")


def test_schedule_list__disables_and_enables_a_schedule(staff_session: StaffSession) -> None:
    schedule = Schedule.objects.create(
        name="nightly-adder", task_path="tests.testapp.tasks.add", args=[1, 2], cron="0 3 * * *"
    )

    page = staff_session.open(reverse("admin:taskmill_schedule_changelist"))
    for action, message, enabled in (
        ("disable", "1 schedule(s) disabled.", False),
        ("enable", "1 schedule(s) enabled.", True),
    ):
        page.check(f'input[name="_selected_action"][value="{schedule.pk}"]')
        page.select_option('select[name="action"]', action)
        page.click('button[name="index"]')
        expect(page.locator(".messagelist")).to_contain_text(message)
        schedule.refresh_from_db()
        assert schedule.enabled is enabled


def test_task_page__a_line_written_in_two_pieces_is_shown_once_whole(
    staff_session: StaffSession,
) -> None:
    running = task_rows.running()
    write_chunk(str(running.id), "first line\nsecond ")

    page = staff_session.open(change_path(running.id))
    log = page.locator("pre.taskmill-log")
    expect(log.locator("span[data-partial]")).to_have_text(re.compile(r"second $"))
    write_chunk(str(running.id), "line, now whole\n")

    expect(log).to_contain_text("second line, now whole", timeout=FOLLOW_WAIT_MS)
    expect(log.locator("span[data-partial]")).to_have_count(0)
    expect(log.locator("span")).to_have_count(2)
