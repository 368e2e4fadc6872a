"""Database faults while workers run and a web process enqueues: PostgreSQL restarted, server
connections killed (PostgreSQL, MariaDB), SQLite's write lock held past the busy timeout.

Workers log the fault, reconnect (or retry the busy database) and go on. Every enqueue either
returns the id of a task that then runs, or raises a database error to its caller: nothing is
dropped silently, lost, or left running. Promised in docs/guarantees.md ("Database outages").
"""

import json
import re
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import pytest
from django.db import DatabaseError, connection

from taskmill.models import TaskRecord
from tests.chaos.enqueuer import Attempt, EnqueuerProcess
from tests.chaos.scale import Figures, scaled
from tests.processes import WorkerFactory, WorkerProcess, worker_env
from tests.testapp.models import LedgerEntry
from tests.waiting import WaitUntil

pytestmark = pytest.mark.django_db(transaction=True)

PG_CTLCLUSTER: Final = shutil.which("pg_ctlcluster") or "/usr/bin/pg_ctlcluster"
# The workers and the enqueuer keep their connections (as a busy site does), and SQLite's busy
# timeout is 1 s, so a lock held for a few seconds outlasts it.
FAULT_SETTINGS: Final = {"DJANGO_SETTINGS_MODULE": "tests.chaos.fault_settings"}
# A 5 s lease: an outage longer than that has running tasks rescued, so rescue and the fence
# are part of what runs here.
WORKER_SETTINGS: Final = {"LEASE_SECONDS": 5, "HEARTBEAT_SECONDS": 1}
WORKERS: Final = 2
# What the caller of enqueue() may get from a database fault: Django's own wrappers of the
# driver's errors, which name the problem (connection refused, terminated, locked, ...).
SURFACED_ERRORS: Final = frozenset(
    {"django.db.utils.OperationalError", "django.db.utils.InterfaceError"}
)
RECONNECT_LOG: Final = "database error, reconnecting"
BUSY_LOG: Final = "database busy, retrying"
SUCCEEDED_LOG: Final = "task succeeded"
CLAIM_LOST_LOG: Final = "its claim's answer was lost"
# Progress asked of both sides between two faults: the enqueuer got new ids, workers ran tasks.
STEP: Final = 10
# What a failure shows of a stalled worker's log.
LOG_TAIL_LINES: Final = 40
MYSQL_UNKNOWN_THREAD: Final = 1094
# How long another writer holds SQLite's lock at least: three busy timeouts (fault_settings.py).
LOCK_HOLD_SECONDS: Final = scaled(3.0, 8.0)


class EnqueuerFactory(Protocol):
    """The `enqueuer_process` fixture: start an enqueuer whose task keys start with a prefix."""

    def __call__(self, key_prefix: str) -> EnqueuerProcess: ...


@pytest.fixture
def enqueuer_process(tmp_path: Path) -> Iterator[EnqueuerFactory]:
    """Start enqueuer processes (tests/chaos/enqueuer.py) on the test database; kill leftovers."""
    started: list[EnqueuerProcess] = []

    def start(key_prefix: str) -> EnqueuerProcess:
        enqueuer = EnqueuerProcess(tmp_path, key_prefix, worker_env(FAULT_SETTINGS))
        started.append(enqueuer)
        return enqueuer

    yield start
    for enqueuer in started:
        if enqueuer.popen.poll() is None:
            enqueuer.kill()


def _start_workers(worker_process: WorkerFactory) -> list[WorkerProcess]:
    env = {**FAULT_SETTINGS, "TASKMILL_TEST_SETTINGS": json.dumps(WORKER_SETTINGS)}
    return [worker_process("--concurrency", "2", env=env) for _ in range(WORKERS)]


def _log_count(workers: list[WorkerProcess], text: str) -> int:
    return sum(worker.output().count(text) for worker in workers)


@dataclass(slots=True)
class Progress:
    """How far the enqueuer and the workers have got, read from their files (not the database,
    which may be down)."""

    enqueuer: EnqueuerProcess
    workers: list[WorkerProcess]
    ids_seen: int = 0
    succeeded_seen: int = 0

    def made(self) -> bool:
        """Tell whether both sides went STEP further since the last call that returned True."""
        ids = sum(1 for attempt in self.enqueuer.attempts() if attempt.id)
        succeeded = _log_count(self.workers, SUCCEEDED_LOG)
        if ids < self.ids_seen + STEP or succeeded < self.succeeded_seen + STEP:
            return False
        self.ids_seen, self.succeeded_seen = ids, succeeded
        return True

    def describe(self) -> str:
        attempts = self.enqueuer.attempts()
        errors = Counter(attempt.error for attempt in attempts if attempt.error)
        described = (
            f"progress: {len(attempts)} attempts, errors {dict(errors)}, "
            f"{_log_count(self.workers, SUCCEEDED_LOG)} tasks succeeded in the worker logs"
        )
        if self.enqueuer.popen.poll() is not None:
            described += f"; the enqueuer exited:\n{self.enqueuer.output()}"
        return described


def _wait_for_every_worker_to_go_on(workers: list[WorkerProcess], wait_until: WaitUntil) -> None:
    """Wait until each worker ran more tasks since the last fault (the enqueuer still runs)."""
    before = [worker.output().count(SUCCEEDED_LOG) for worker in workers]

    def describe() -> str:
        stalled = [
            f"{worker!r} (exit code {worker.popen.poll()}, {seen} tasks succeeded before, "
            f"still {seen}); its log ends:\n"
            + "\n".join(worker.output().splitlines()[-LOG_TAIL_LINES:])
            for worker, seen in zip(workers, before, strict=True)
            if worker.output().count(SUCCEEDED_LOG) <= seen
        ]
        return "every worker running tasks after the faults; stalled: " + "\n".join(stalled)

    wait_until(
        lambda: all(
            worker.output().count(SUCCEEDED_LOG) > seen
            for worker, seen in zip(workers, before, strict=True)
        ),
        timeout=60,
        message=describe,
    )


def _run_faults(
    progress: Progress, wait_until: WaitUntil, faults: int, inject: Callable[[], object]
) -> None:
    """Inject `faults` faults, each once both sides have made progress, and wait for progress
    after the last one."""
    for _ in range(faults):
        wait_until(progress.made, timeout=120, message=progress.describe)
        inject()
    wait_until(progress.made, timeout=120, message=progress.describe)


# --- the accounting, after the faults -------------------------------------------------------


def _all_finished() -> bool:
    connection.close_if_unusable_or_obsolete()
    return not TaskRecord.objects.filter(state__in=("blocked", "ready", "running")).exists()


def _describe_unfinished() -> str:
    unfinished = TaskRecord.objects.filter(state__in=("blocked", "ready", "running"))
    fields = ("args", "state", "attempts", "lease_owner", "lease_expires_at", "run_after")
    return f"every task finished; unfinished: {list(unfinished.values_list(*fields)[:5])}"


def _account_for_enqueues(attempts: list[Attempt]) -> list[str]:
    """Check the enqueuer's record against the database; return the keys of failed attempts
    whose task was stored all the same (the commit happened, its acknowledgement was lost)."""
    assert [attempt.n for attempt in attempts] == list(range(len(attempts))), "attempts missing"
    unclear = [a for a in attempts if a.id is None and a.error not in SURFACED_ERRORS]
    assert not unclear, f"enqueue failed with an unclear error: {unclear[:3]}"
    assert all(attempt.message for attempt in attempts if attempt.error)
    stored = {str(pk): args for pk, args in TaskRecord.objects.values_list("id", "args")}
    given = {attempt.id: attempt.key for attempt in attempts if attempt.id}
    missing = {id_: key for id_, key in given.items() if stored.get(id_) != [key]}
    assert not missing, f"enqueue() returned ids with no such task stored: {missing}"
    stored_keys = {args[0] for args in stored.values()}
    return [a.key for a in attempts if a.error is not None and a.key in stored_keys]


def _assert_every_task_succeeded() -> dict[str, int]:
    """Check every stored task succeeded and ran its side effect at least once and at most once
    per attempt; return the figures: tasks, attempts, rescued (WorkerLost), duplicates."""
    rows = list(TaskRecord.objects.values_list("args", "state", "attempts", "errors"))
    states = Counter(state for _, state, _, _ in rows)
    assert states == {"succeeded": len(rows)}, f"task states: {dict(states)}"
    ledger = Counter(LedgerEntry.objects.values_list("key", flat=True))
    wrong = [
        (args[0], ledger[args[0]], n) for args, _, n, _ in rows if not 1 <= ledger[args[0]] <= n
    ]
    assert not wrong, f"(key, executions, attempts) out of bounds: {wrong[:5]}"
    rescued = sum(
        1
        for *_, errors in rows
        if any(e["exception_class_path"].endswith(".WorkerLost") for e in errors)
    )
    return {
        "tasks": len(rows),
        "attempts": sum(n for _, _, n, _ in rows),
        "rescued": rescued,
        "duplicates": sum(ledger.values()) - len(rows),
    }


def _enqueue_outage(attempts: list[Attempt]) -> float:
    """Seconds the enqueuer spent failing: from each run of errors' first to the next success."""
    total, first_error = 0.0, None
    for attempt in attempts:
        if attempt.error is not None and first_error is None:
            first_error = attempt.t
        elif attempt.id is not None and first_error is not None:
            total += attempt.t - first_error
            first_error = None
    return round(total, 2)


def _finish_and_account(
    enqueuer: EnqueuerProcess,
    workers: list[WorkerProcess],
    wait_until: WaitUntil,
    figures: Figures,
) -> list[Attempt]:
    """Stop the enqueuer, wait for every task to finish, check all of it; fill `figures`."""
    for worker in workers:
        assert worker.popen.poll() is None, f"a worker exited:\n{worker.output()}"
    assert enqueuer.stop() == 0, enqueuer.output()
    connection.close()
    wait_until(_all_finished, timeout=180, message=_describe_unfinished)
    attempts = enqueuer.attempts()
    landed = _account_for_enqueues(attempts)
    figures.update(_assert_every_task_succeeded())
    errors = [attempt for attempt in attempts if attempt.error]
    figures.update(
        enqueue_attempts=len(attempts),
        enqueue_errors=len(errors),
        enqueue_error_kinds=dict(Counter(_kind(attempt) for attempt in errors)),
        landed_despite_error=len(landed),
        enqueue_outage_s=_enqueue_outage(attempts),
        worker_reconnects=_log_count(workers, RECONNECT_LOG),
        worker_busy_retries=_log_count(workers, BUSY_LOG),
        claims_handed_back=_log_count(workers, CLAIM_LOST_LOG),
    )
    return attempts


def _kind(attempt: Attempt) -> str:
    """The error's class and the first words of its message: enough to tell faults apart."""
    words = re.sub(r"\s+", " ", attempt.message).strip()[:40]
    return f"{(attempt.error or '').rsplit('.', 1)[-1]}: {words}"


# --- PostgreSQL restarted -------------------------------------------------------------------


def _pg_cluster() -> tuple[str, str]:
    (version,) = [p.name for p in Path("/etc/postgresql").iterdir()]
    return version, "main"


def _pg_ctlcluster(action: str, *options: str) -> "subprocess.CompletedProcess[bytes]":
    version, cluster = _pg_cluster()
    command = [PG_CTLCLUSTER, "--skip-systemctl-redirect", version, cluster, action, *options]
    return subprocess.run(command, check=False, capture_output=True, timeout=120)


@pytest.fixture
def postgresql_running_afterwards() -> Iterator[None]:
    """Make sure PostgreSQL runs again after the test, whatever happened in it."""
    yield
    if _pg_ctlcluster("status").returncode != 0:
        started = _pg_ctlcluster("start")
        assert started.returncode == 0, started.stderr.decode()
    connection.close()


def _restart_postgresql() -> None:
    restarted = _pg_ctlcluster("restart", "--", "-m", "fast")
    assert restarted.returncode == 0, restarted.stderr.decode()


@pytest.mark.only_on("postgresql")
@pytest.mark.usefixtures("postgresql_running_afterwards")
def test_postgresql_restart__workers_reconnect_and_enqueue_errors_reach_the_caller(
    worker_process: WorkerFactory,
    enqueuer_process: EnqueuerFactory,
    wait_until: WaitUntil,
    figures: Figures,
) -> None:
    workers = _start_workers(worker_process)
    enqueuer = enqueuer_process("restart")
    restarts = scaled(1, 3)
    _run_faults(Progress(enqueuer, workers), wait_until, restarts, _restart_postgresql)
    _wait_for_every_worker_to_go_on(workers, wait_until)
    # Not one from each worker: a supervisor closes its connections before forking a child, so
    # it may have none open when the fault comes, and then connects again with nothing to log.
    assert _log_count(workers, RECONNECT_LOG) > 0, "no worker logged a reconnect"
    attempts = _finish_and_account(enqueuer, workers, wait_until, figures)
    figures["restarts"] = restarts
    assert any(attempt.error for attempt in attempts), "no enqueue met the restart"


# --- connections killed on the server ---------------------------------------------------------


def _kill_connections() -> int:
    """Kill every connection to this test's database but the test's own; return how many.

    Only this run's database: other test runs share the server.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT id FROM information_schema.PROCESSLIST WHERE db = DATABASE() "
            "AND id <> CONNECTION_ID()"
        )
        ids = [row[0] for row in cursor.fetchall()]
        for connection_id in ids:
            try:
                cursor.execute("KILL CONNECTION %s", [connection_id])
            except DatabaseError as error:
                # The connection may have ended by itself since the SELECT.
                if error.args[0] != MYSQL_UNKNOWN_THREAD:
                    raise
        return len(ids)


@pytest.mark.only_on("postgresql", "mysql")
def test_killed_connections__workers_reconnect_and_enqueue_errors_reach_the_caller(
    worker_process: WorkerFactory,
    enqueuer_process: EnqueuerFactory,
    wait_until: WaitUntil,
    figures: Figures,
) -> None:
    workers = _start_workers(worker_process)
    enqueuer = enqueuer_process("kill")
    kills = scaled(3, 30)
    killed: list[int] = []
    _run_faults(
        Progress(enqueuer, workers), wait_until, kills, lambda: killed.append(_kill_connections())
    )
    _wait_for_every_worker_to_go_on(workers, wait_until)
    # Not one from each worker: a supervisor closes its connections before forking a child, so
    # it may have none open when the fault comes, and then connects again with nothing to log.
    assert _log_count(workers, RECONNECT_LOG) > 0, "no worker logged a reconnect"
    attempts = _finish_and_account(enqueuer, workers, wait_until, figures)
    figures.update(kills=kills, connections_killed=sum(killed))
    assert all(killed), f"connections killed per round: {killed}"
    assert any(attempt.error for attempt in attempts), "no enqueue met a killed connection"


# --- SQLite: another writer holds the lock ----------------------------------------------------


@dataclass(slots=True)
class LockHolder:
    """Another process's writer: holds SQLite's write lock until the fault was felt."""

    path: str
    enqueuer: EnqueuerProcess
    workers: list[WorkerProcess]
    wait_until: WaitUntil
    held_seconds: float = 0.0

    def hold(self) -> None:
        errors_before = self._enqueue_errors()
        busy_before = _log_count(self.workers, BUSY_LOG)
        writer = sqlite3.connect(self.path, isolation_level=None, timeout=60)
        try:
            writer.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            # Held for a while, and until both sides met it: each round is a fault seen to land.
            self.wait_until(
                lambda: (
                    time.monotonic() - started >= LOCK_HOLD_SECONDS
                    and self._enqueue_errors() > errors_before
                    and _log_count(self.workers, BUSY_LOG) > busy_before
                ),
                timeout=60,
                message="an enqueue error and a busy worker while the lock is held",
            )
            self.held_seconds += time.monotonic() - started
            writer.execute("COMMIT")
        finally:
            writer.close()

    def _enqueue_errors(self) -> int:
        return sum(1 for attempt in self.enqueuer.attempts() if attempt.error)


@pytest.mark.only_on("sqlite")
def test_sqlite_lock_held_past_the_busy_timeout__workers_retry_and_enqueue_errors_reach_the_caller(
    worker_process: WorkerFactory,
    enqueuer_process: EnqueuerFactory,
    wait_until: WaitUntil,
    figures: Figures,
) -> None:
    workers = _start_workers(worker_process)
    enqueuer = enqueuer_process("locked")
    holds = scaled(3, 20)
    holder = LockHolder(str(connection.settings_dict["NAME"]), enqueuer, workers, wait_until)
    _run_faults(Progress(enqueuer, workers), wait_until, holds, holder.hold)
    _wait_for_every_worker_to_go_on(workers, wait_until)
    attempts = _finish_and_account(enqueuer, workers, wait_until, figures)
    figures.update(lock_holds=holds, lock_held_s=round(holder.held_seconds, 1))
    assert {attempt.error for attempt in attempts if attempt.error} == {
        "django.db.utils.OperationalError"
    }
