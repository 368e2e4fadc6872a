"""Headless Chromium against pytest-django's live server, logged into the admin as staff.

Playwright drives the system's Chromium by its executable path (`make sysdeps` installs it;
TASKMILL_CHROMIUM names another one); no browser is ever downloaded. When Chromium or
playwright is missing these tests are skipped with the reason, or fail under CI=true.
Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
from django.contrib.auth.models import User

from tests.processes import REPO_ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ARTIFACTS: Final = REPO_ROOT / "test-artifacts"
CHROMIUM_CANDIDATES: Final = ("chromium", "chromium-browser")
PASSWORD: Final = "browser-test-password"  # noqa: S105 - a test user's
TIMEOUT_MS: Final = 15_000
ASYNC_UNSAFE: Final = "DJANGO_ALLOW_ASYNC_UNSAFE"


def chromium_path() -> str | None:
    """The Chromium executable to drive: TASKMILL_CHROMIUM, else the first on PATH."""
    given = os.environ.get("TASKMILL_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements/dev.txt)"
    if chromium_path() is None:
        return "Chromium not found (make sysdeps installs it; or set TASKMILL_CHROMIUM)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_items = [item for item in items if item.get_closest_marker("browser")]
    reason = _missing() if browser_items else None
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.exit(f"browser tests: {reason} (CI=true: a missing browser fails the run)", 1)
    for item in browser_items:
        item.add_marker(pytest.mark.skip(reason=f"browser tests: {reason}"))


@pytest.fixture(scope="module")
def browser(django_db_setup: None) -> Iterator[Browser]:
    """Chromium for one test module, started once the test database exists.

    Playwright's sync API keeps an event loop set in this thread while it runs, which makes
    Django refuse ORM calls here; the calls tests make between page actions are plain
    synchronous code, so they are allowed for the module's lifetime, and only then.
    """
    from playwright.sync_api import sync_playwright

    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            # Chromium's sandbox needs user namespaces, which containers running as root lack.
            args = ["--no-sandbox"] if os.geteuid() == 0 else []
            launched = playwright.chromium.launch(
                executable_path=chromium_path(), headless=True, args=args
            )
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@dataclass(frozen=True, slots=True)
class StaffSession:
    page: Page
    base_url: str

    def open(self, path: str) -> Page:
        self.page.goto(f"{self.base_url}{path}")
        return self.page

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def staff_session(browser: Browser, live_server: Any) -> Iterator[StaffSession]:
    """A browser page logged into the admin of the live server as a superuser."""
    User.objects.create_superuser("operator", "operator@example.com", PASSWORD)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    yield StaffSession(page=page, base_url=live_server.url)
    context.close()
