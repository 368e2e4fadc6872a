"""Shared fixtures and hooks: database gate, folder markers, only_on/requires_django, workers.

- tests/unit: pure code, no database (a unit test that asks for one fails).
- every other folder needs the database; tests/db get the `db` marker, tests/integration
  the `integration` marker, tests/browser the `browser` marker (and a Chromium gate of its
  own, in tests/browser/conftest.py), tests/chaos the `chaos` marker (see its conftest).
  If the database is unreachable they are skipped with the reason, or the run fails at once
  when CI=true.
"""

import os
import re
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import django
import pytest
from django.db import connections

from tests.processes import WorkerFactory, WorkerProcess, start_worker, worker_env
from tests.waiting import WaitUntil
from tests.waiting import wait_until as _wait_until

TESTS_DIR = Path(__file__).resolve().parent
VENDORS = ("postgresql", "mysql", "sqlite")
FOLDER_MARKERS = {
    "db": "db",
    "integration": "integration",
    "browser": "browser",
    "chaos": "chaos",
}
PROBE_TIMEOUT = 3
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


# --- collection: folder markers and the database gate -------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needs_db = []
    for item in items:
        folder = _folder(item)
        if folder in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[folder])
        if folder != "unit":
            needs_db.append(item)
        reason = _skip_reason(item)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
    if needs_db:
        _gate_on_database(needs_db)


def _folder(item: pytest.Item) -> str:
    """Return the first folder under tests/ that holds `item` ("" when outside tests/)."""
    try:
        parts = item.path.resolve().relative_to(TESTS_DIR).parts
    except ValueError:
        return ""
    return parts[0] if len(parts) > 1 else ""


def _gate_on_database(items: list[pytest.Item]) -> None:
    """Skip `items` if the database is unreachable; under CI=true, end the run instead."""
    settings_dict = connections["default"].settings_dict
    error = probe_database(settings_dict)
    if error is None:
        return
    vendor = connections["default"].vendor
    reason = f"{vendor} unreachable at {settings_dict['HOST']}:{settings_dict['PORT']}: {error}"
    if os.environ.get("CI") == "true":
        test_db = os.environ.get("TASKMILL_TEST_DB", "sqlite")
        pytest.exit(
            f"TASKMILL_TEST_DB={test_db}: {reason} (CI=true: a missing database fails the run)",
            returncode=1,
        )
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        item.add_marker(skip)


def probe_database(settings_dict: dict[str, Any]) -> str | None:
    """Open and close one raw driver connection; return the error text, or None if it worked."""
    engine = settings_dict["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        return None
    params = {
        "host": settings_dict["HOST"],
        "port": int(settings_dict["PORT"]),
        "user": settings_dict["USER"],
        "password": settings_dict["PASSWORD"],
        "connect_timeout": PROBE_TIMEOUT,
    }
    try:
        if engine == "django.db.backends.postgresql":
            import psycopg

            psycopg.connect(dbname=settings_dict["NAME"], **params).close()
        elif engine == "django.db.backends.mysql":
            import MySQLdb

            MySQLdb.connect(database=settings_dict["NAME"], **params).close()
        else:
            return f"no probe for ENGINE {engine!r}"
    except Exception as exc:
        return re.sub(r"\s+", " ", f"{type(exc).__name__}: {exc}").strip()[:300]
    return None


# --- per-test markers ---------------------------------------------------------------------


def _skip_reason(item: pytest.Item) -> str | None:
    """Return why `item` doesn't run here under only_on/requires_django, or None if it does.

    Raise pytest.UsageError for a marker with bad arguments, so a typo can't skip silently.
    """
    vendor = connections["default"].vendor
    for marker in item.iter_markers("only_on"):
        wanted = marker.args
        if not wanted or any(value not in VENDORS for value in wanted):
            raise pytest.UsageError(
                f"{item.nodeid}: only_on{wanted!r}: use one or more of {', '.join(VENDORS)}"
            )
        if vendor not in wanted:
            return f"only on {', '.join(wanted)}; running on {vendor}"
    for marker in item.iter_markers("requires_django"):
        version = marker.args[0] if len(marker.args) == 1 else None
        if not isinstance(version, str) or not re.fullmatch(r"\d+(\.\d+)*", version):
            raise pytest.UsageError(
                f"{item.nodeid}: requires_django{marker.args!r}: give one version, e.g. '6.1'"
            )
        needed = tuple(int(part) for part in version.split("."))
        if django.VERSION[: len(needed)] < needed:
            return f"needs Django >= {version}; running {django.get_version()}"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _folder(item) == "unit" and item.get_closest_marker("django_db") is not None:
        pytest.fail("tests/unit must not use the database; move this test to tests/db")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _drop_broken_connections(request: pytest.FixtureRequest) -> None:
    """Start each database test on a working connection, as Django does per request.

    A test that restarts the database server (or a server restart from outside) would
    otherwise leave a dead connection that fails every later test of the run.
    """
    if _folder(request.node) == "unit":
        return
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.in_atomic_block and not conn.is_usable():
            conn.close()


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> WaitUntil:
    """`tests.waiting.wait_until`, as a fixture."""
    return _wait_until


@pytest.fixture
def worker_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start real `taskmill worker` processes on the test database; stop them afterwards.

    Needs @pytest.mark.django_db(transaction=True): the worker only sees committed rows.
    `command_prefix` starts the worker through a command such as `ip netns exec NAME`.
    Teardown SIGTERMs each worker's process group, SIGKILLs it after 10 s and fails the test
    if any process of the group is left. A failed test shows each worker's output, printed
    after the worker stopped (so its shutdown logs are there too).
    """
    _require_transactional_db(request)
    workers: list[WorkerProcess] = []

    def start(
        *args: str, env: dict[str, str] | None = None, command_prefix: Sequence[str] = ()
    ) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(workers) + 1}.log"
        worker = start_worker(
            args, env=worker_env(env), log_path=log_path, command_prefix=command_prefix
        )
        workers.append(worker)
        return worker

    yield start

    leftovers = {worker: worker.stop() for worker in workers}
    _report_worker_output(request.node, workers)
    alive = {repr(worker): pids for worker, pids in leftovers.items() if pids}
    assert not alive, f"worker processes left running after SIGKILL: {alive}"


def _require_transactional_db(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("django_db")
    transaction = False
    if marker is not None:
        positional = marker.args[0] if marker.args else False
        transaction = bool(marker.kwargs.get("transaction", positional))
    if not (transaction or "transactional_db" in request.fixturenames):
        pytest.fail(
            "worker_process needs @pytest.mark.django_db(transaction=True): a worker process "
            "sees only committed rows of the test database"
        )


def _report_worker_output(item: pytest.Item, workers: list[WorkerProcess]) -> None:
    """If the test failed, print each worker's full output (pytest shows it under the failure)."""
    reports = item.stash.get(REPORTS, {})
    if not workers or not any(report.failed for report in reports.values()):
        return
    for worker in workers:
        title = f"worker pid {worker.pid}: {' '.join(worker.args) or '(no args)'}"
        print(f"----- {title} -----\n{worker.output()}")  # noqa: T201 - the teardown capture
