"""The example project's demo (what `make demo` runs) tours every task on a real worker, sums
up each result as expected, exits 0 and leaves no worker behind."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import REPO_ROOT, group_members

# The example project keeps its own SQLite file whatever the test database is: run it once.
pytestmark = pytest.mark.only_on("sqlite")

EXAMPLE_DIR = REPO_ROOT / "example"
DEMO_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0

# (task label, status, attempts, class of the last error); months vary, so they are masked.
EXPECTED_SUMMARY = [
    ("add(2, 3)", "SUCCESSFUL", "1", None),
    ("send_welcome_email(ada)", "SUCCESSFUL", "1", None),
    ("send_reminder(ada)", "SUCCESSFUL", "1", None),
    ("charge_order(order)", "SUCCESSFUL", "1", None),
    ("ship_order(order)", "SUCCESSFUL", "1", None),
    ("flaky()", "SUCCESSFUL", "3", None),
    ("always_fails(17)", "FAILED", "1", "ValueError"),
    ("publish_catalogue()", "FAILED", "0", "DependencyFailed"),
    ("overrun(5)", "FAILED", "1", "TimeoutError"),
    *[('sales_report("YYYY-MM")', "SUCCESSFUL", "1", None)] * 4,
    ('fetch_rates("EUR")', "SUCCESSFUL", "1", None),
    ("rebuild_search_index()", "SUCCESSFUL", "1", None),
    ("long_job(600)", "FAILED", "1", "TaskCancelled"),
]


def test_demo_runs_the_tour_and_exits_0(tmp_path: Path) -> None:
    env = _example_env(tmp_path / "example.sqlite3")
    migrate_log = tmp_path / "migrate.log"
    assert _manage(["migrate", "--noinput"], env, migrate_log) == 0, migrate_log.read_text()

    demo_log = tmp_path / "demo.log"
    code = _manage(["taskmill_demo"], env, demo_log)
    output = demo_log.read_text(encoding="utf-8")

    assert code == 0, output
    assert _summary_rows(output) == EXPECTED_SUMMARY, output
    assert "✓ Every task ended as the tour expects." in output
    assert "The worker exited with code 0." in output
    worker_pid = int(_search(r"pid (\d+); its output goes to", output))
    assert group_members(worker_pid) == [], f"the demo's worker is still running:\n{output}"


def _example_env(database: Path) -> dict[str, str]:
    """The environment of `make demo`, with the example's database in a temporary file."""
    pythonpath = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "exampleproject.settings",
        "TASKMILL_EXAMPLE_DB": str(database),
        "PYTHONPATH": os.pathsep.join(pythonpath),
        "PYTHONUNBUFFERED": "1",
    }


def _manage(args: list[str], env: dict[str, str], log_path: Path) -> int:
    """Run `python manage.py *args` in example/, output to log_path; return its exit code.

    On timeout, SIGTERM lets the demo stop its worker; SIGKILL follows if that hangs too.
    """
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=EXAMPLE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        return process.wait(DEMO_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output = log_path.read_text()
        pytest.fail(f"manage.py {' '.join(args)} ran over {DEMO_TIMEOUT} s:\n{output}")


def _summary_rows(output: str) -> list[tuple[str, str, str, str | None]]:
    """Parse the demo's summary table into (label, status, attempts, last error class)."""
    table = output.split("\nSummary\n", 1)[-1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:  # after the header and its rule
        label, status, attempts, _took, *outcome = re.split(r"\s{2,}", line.strip())
        error = re.match(r"(\w+): ", outcome[0]) if status == "FAILED" and outcome else None
        masked = re.sub(r"\d{4}-\d{2}", "YYYY-MM", label)
        rows.append((masked, status, attempts, error[1] if error else None))
    return rows


def _search(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in the demo's output:\n{text}"
    return found[1]
