"""`make serve`: the example site under runserver with the worker it autostarts. The demo's
superuser logs in, the admin (an order's page lists its tasks) and the dashboard answer, the
embedded worker runs an order's task and the periodic schedule, and stopping the server the way
Ctrl-C does leaves no process behind."""

import http.cookiejar
import os
import re
import signal
import sqlite3
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.example import EXAMPLE_DIR, example_env, manage
from tests.integration.servers import ServerProcess, free_port
from tests.waiting import WaitUntil

# The example project keeps its own SQLite file whatever the test database is: run it once.
pytestmark = pytest.mark.only_on("sqlite")

START_TIMEOUT = 90.0  # a Django process starting on a busy 2-core CI machine
STOP_TIMEOUT = 30.0
USERNAME, PASSWORD = "admin", "taskmill-demo"  # what the demo and `make serve` print
# An order whose charge is enqueued for it (for_object), before the server starts.
PLACE_ORDER = """
from shop.models import Customer, Order
from shop.tasks import charge_order
ada = Customer.objects.create(name="Ada Lovelace", email="ada@example.com")
order = Order.objects.create(customer=ada, total="42.00")
charge_order.using(for_object=order).enqueue(order)
"""


class Browser:
    """An HTTP client that keeps its cookies, as a browser keeps the admin's session."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[str, str]:
        """Return (the path redirects ended at, the page)."""
        return self._open(urllib.request.Request(self.base + path))  # noqa: S310 - http://127.0.0.1

    def post(self, path: str, fields: dict[str, str]) -> tuple[str, str]:
        body = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(self.base + path, data=body, method="POST")  # noqa: S310
        return self._open(request)

    def log_in(self, username: str, password: str) -> tuple[str, str]:
        _, form = self.get("/admin/login/?next=/admin/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert token is not None, form
        return self.post(
            "/admin/login/?next=/admin/",
            {"csrfmiddlewaretoken": token[1], "username": username, "password": password},
        )

    def _open(self, request: urllib.request.Request) -> tuple[str, str]:
        with self.opener.open(request, timeout=30) as response:
            final = urllib.parse.urlsplit(response.geturl())
            return final.path, response.read().decode()


@pytest.fixture
def example_site(tmp_path: Path) -> Iterator[ServerProcess]:
    """Do what `make serve` does: migrate, create the superuser, start runserver (with its
    autoreloader); afterwards kill whatever is left of it."""
    database = tmp_path / "example.sqlite3"
    env = example_env(database)
    env.pop("RUN_MAIN", None)
    port = free_port()
    assert manage(["migrate", "--noinput"], env, tmp_path / "migrate.log") == 0
    intro = tmp_path / "superuser.log"
    assert manage(["demo_superuser", "--port", str(port)], env, intro) == 0, intro.read_text()
    assert f"Log in as:  {USERNAME} / {PASSWORD}" in intro.read_text()
    order_log = tmp_path / "order.log"
    assert manage(["shell", "-c", PLACE_ORDER], env, order_log) == 0, order_log.read_text()
    server = ServerProcess(
        [sys.executable, str(EXAMPLE_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}"],
        port=port,
        env=env,
        log_path=tmp_path / "server.log",
    )
    yield server
    leftovers = server.kill_everything()
    print(f"----- server pid {server.pid} -----\n{server.output()}")  # noqa: T201 - on failure
    assert not leftovers, f"processes left after SIGKILL: {leftovers}"


def order_status(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        (status,) = connection.execute("SELECT status FROM shop_order").fetchone()
    return str(status)


def succeeded_runs(database: Path, schedule: str) -> int:
    """Count the succeeded runs of a schedule in the example's database."""
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute(
            "SELECT COUNT(*) FROM taskmill_taskrecord r JOIN taskmill_schedule s "
            "ON r.schedule_id = s.id WHERE s.name = ? AND r.state = 'succeeded'",
            [schedule],
        ).fetchone()
    return int(count)


def test_make_serve__admin_and_dashboard_answer_the_demo_superuser_and_the_worker_runs(
    example_site: ServerProcess, wait_until: WaitUntil, tmp_path: Path
) -> None:
    server = example_site
    wait_until(server.answers, timeout=START_TIMEOUT, message=server.output)
    browser = Browser(server.port)

    assert browser.get("/taskmill/")[0] == "/admin/login/"  # staff only
    landed, index = browser.log_in(USERNAME, PASSWORD)
    assert landed == "/admin/", index
    assert "/admin/taskmill/taskrecord/" in index
    assert "/admin/shop/order/" in index
    path, dashboard = browser.get("/taskmill/")
    assert path == "/taskmill/", dashboard

    # The worker runserver started runs the tasks, and leads, so it runs the schedules too.
    wait_until(server.embedded_workers, timeout=START_TIMEOUT, message=server.output)
    database = tmp_path / "example.sqlite3"
    wait_until(lambda: order_status(database) == "paid", timeout=START_TIMEOUT)
    _, order_page = browser.get("/admin/shop/order/1/change/")
    assert "shop.tasks.charge_order" in order_page  # TaskHistoryInline
    wait_until(
        lambda: succeeded_runs(database, "shop.tasks.check_payments") >= 1,
        timeout=START_TIMEOUT,
        message=server.output,
    )
    _, tasks_page = browser.get("/admin/taskmill/taskrecord/")
    assert "shop.tasks.check_payments" in tasks_page

    os.killpg(server.pid, signal.SIGTERM)  # what Ctrl-C in the terminal of `make serve` does
    wait_until(lambda: not server.processes(), timeout=STOP_TIMEOUT, message=server.output)
