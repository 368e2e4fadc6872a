"""The example project's demo (what `make demo` runs) tours every task on a real worker, shows
the long task's progress and output live, cancels a task half-way, sees the periodic schedule
run, sums up each result as expected, exits 0 and leaves no worker behind."""

import re
from dataclasses import dataclass

import pytest

from tests.integration.example import example_env, manage
from tests.processes import group_members

# The example project keeps its own SQLite file whatever the test database is: run it once.
pytestmark = pytest.mark.only_on("sqlite")

# (verdict, task label, status, attempts, class of the last error); months vary, so they are
# masked. The periodic schedule's row counts runs: at least 3, maybe more.
EXPECTED_SUMMARY = [
    ("✓", "add(2, 3)", "SUCCESSFUL", "1", None),
    ("✓", "send_welcome_email(ada)", "SUCCESSFUL", "1", None),
    ("✓", "send_reminder(ada)", "SUCCESSFUL", "1", None),
    ("✓", "charge_order(order)", "SUCCESSFUL", "1", None),
    ("✓", "reserve_stock(order)", "SUCCESSFUL", "1", None),
    ("✓", "ship_order(order)", "SUCCESSFUL", "1", None),
    ("✓", "flaky()", "SUCCESSFUL", "3", None),
    ("✓", "always_fails(17)", "FAILED", "1", "ValueError"),
    ("✓", "publish_catalogue()", "FAILED", "0", "DependencyFailed"),
    ("✓", "overrun(5)", "FAILED", "1", "TimeoutError"),
    *[("✓", 'sales_report("YYYY-MM")', "SUCCESSFUL", "1", None)] * 4,
    ("✓", 'fetch_rates("EUR")', "SUCCESSFUL", "1", None),
    ("✓", "rebuild_search_index()", "SUCCESSFUL", "1", None),
    ("✓", "import_catalogue(60)", "SUCCESSFUL", "1", None),
    ("✓", "export_orders(100)", "FAILED", "1", "TaskCancelled"),
    ("✓", "check_payments() @periodic", "SUCCESSFUL", "N runs", None),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoRun:
    code: int
    output: str

    @property
    def events(self) -> str:
        """The live narration, between "Watching the results" and the schedules."""
        return self.output.split("Watching the results", 1)[-1].split("\nSchedules ", 1)[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """Run `make demo`'s two commands once, on a fresh example database, for every test here."""
    tmp_path = tmp_path_factory.mktemp("demo")
    env = example_env(tmp_path / "example.sqlite3")
    migrate_log = tmp_path / "migrate.log"
    assert manage(["migrate", "--noinput"], env, migrate_log) == 0, migrate_log.read_text()
    demo_log = tmp_path / "demo.log"
    code = manage(["taskmill_demo"], env, demo_log)
    return DemoRun(code=code, output=demo_log.read_text(encoding="utf-8"))


def test_demo_runs_the_tour_and_exits_0(demo: DemoRun) -> None:
    output = demo.output

    assert demo.code == 0, output
    assert _summary_rows(output) == EXPECTED_SUMMARY, output
    assert int(_search(r"@periodic .* (\d+) succeeded, 0 failed", output)) >= 3, output
    assert "✓ Every task ended as the tour expects." in output
    assert "The worker exited with code 0." in output
    worker_pid = int(_search(r"pid (\d+); its output goes to", output))
    assert group_members(worker_pid) == [], f"the demo's worker is still running:\n{output}"
    # The demo command started no worker of its own (AUTOSTART is on in the example): the
    # worker it spawned leads, and no other worker was seen.
    assert f"The demo's worker (pid {worker_pid}) leads" in output, output
    assert "also serves this database" not in output, output


def test_demo_draws_the_long_tasks_progress_and_shows_its_output_live(demo: DemoRun) -> None:
    events = demo.events

    bars = [int(p) for p in re.findall(r"import_catalogue\(60\) \[[█░]+\]\s+(\d+)%", events)]
    assert len(bars) >= 2, events
    assert bars == sorted(bars), events
    assert bars[-1] == 100, events
    assert "import_catalogue(60) says: importing 60 products" in events
    assert "import_catalogue(60) says: [stderr] product 'teapot-xl' has no price" in events
    assert "import_catalogue(60) says: [log] INFO shop.tasks: imported 20 of 60" in events


def test_demo_cancels_the_export_half_way_and_it_stops_by_itself(demo: DemoRun) -> None:
    events = demo.events

    cancelled_at = int(_search(r"export_orders\(100\) is (\d+)% done: taskmill.cancel", events))
    assert 50 <= cancelled_at < 100, events
    assert "export_orders(100) says: [log] WARNING shop.tasks.export_orders: cancelled: " in events
    assert "export_orders(100) cancelled while running: it stopped by itself" in events


def test_demo_runs_the_dependant_after_both_its_dependencies(demo: DemoRun) -> None:
    events = demo.events

    # The summary's ✓ also checks the start times: ship_order started after both finished.
    shipped = events.index("✓ ship_order(order)")
    assert events.index("✓ charge_order(order)") < shipped, events
    assert events.index("✓ reserve_stock(order)") < shipped, events
    assert "(after charge_order(order) and reserve_stock(order))" in events[shipped:], events


def test_demo_sees_the_periodic_runs_and_lists_the_cron_schedule(demo: DemoRun) -> None:
    runs = re.findall(r"⟳ check_payments\(\) run due [\d:]+ → \d+ \(run #\d+\)", demo.events)
    assert len(runs) >= 3, demo.events
    cron_row = r"shop\.tasks\.expire_baskets\s+shop\.tasks\.expire_baskets\s+\* \* \* \* \*"
    assert re.search(cron_row, demo.output), demo.output


def test_demo_ends_with_the_superusers_credentials(demo: DemoRun) -> None:
    assert "Log in as:  admin / taskmill-demo" in demo.output, demo.output
    assert "Dashboard:  http://127.0.0.1:8000/taskmill/" in demo.output


def _summary_rows(output: str) -> list[tuple[str, str, str, str, str | None]]:
    """Parse the demo's summary table into (verdict, label, status, attempts, last error class)."""
    table = output.split("\nSummary\n", 1)[-1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:  # after the header and its rule
        verdict, label, _expected, status, attempts, _took, *outcome = re.split(
            r"\s{2,}", line.strip()
        )
        error = re.match(r"(\w+): ", outcome[0]) if status == "FAILED" and outcome else None
        masked = re.sub(r"\d{4}-\d{2}", "YYYY-MM", label)
        attempts = re.sub(r"^\d+ runs$", "N runs", attempts)
        rows.append((verdict, masked, status, attempts, error[1] if error else None))
    return rows


def _search(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in the demo's output:\n{text}"
    return found[1]
