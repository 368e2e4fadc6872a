"""AUTOSTART under real web servers: one worker per database, restarted when it dies, gone when
the server goes (however it goes), and never started by other commands."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from django.db import connections

from taskmill.models import Worker
from tests.integration.helpers import children_of, is_alive, state_of
from tests.integration.servers import (
    ProcessInfo,
    ServerProcess,
    free_port,
    server_command,
    server_env,
)
from tests.processes import REPO_ROOT, WorkerFactory
from tests.waiting import WaitUntil

pytestmark = pytest.mark.django_db(transaction=True)

START_TIMEOUT = 90.0  # a Django process starting on a busy 2-core CI machine
STOP_TIMEOUT = 30.0


class ServerFactory(Protocol):
    def __call__(
        self, kind: str, *extra: str, env: dict[str, str] | None = None
    ) -> ServerProcess: ...


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start web servers with AUTOSTART on the test database; kill all they started afterwards."""
    servers: list[ServerProcess] = []

    def start(kind: str, *extra: str, env: dict[str, str] | None = None) -> ServerProcess:
        port = free_port()
        server = ServerProcess(
            server_command(kind, port, *extra),
            port=port,
            env=server_env(env),
            log_path=tmp_path / f"server-{len(servers) + 1}.log",
        )
        servers.append(server)
        return server

    yield start

    leftovers = {server.pid: server.kill_everything() for server in servers}
    for server in servers:
        # Shown by pytest only when the test failed.
        print(f"----- server pid {server.pid} -----\n{server.output()}")  # noqa: T201
    database = str(connections["default"].settings_dict["NAME"])
    Path(f"{database}-taskmill-autostart.lock").unlink(missing_ok=True)
    assert not any(leftovers.values()), f"processes left after SIGKILL: {leftovers}"


def signal_name(sig: signal.Signals) -> str:
    return sig.name


def one(found: list[ProcessInfo]) -> ProcessInfo | None:
    return found[0] if len(found) == 1 else None


def wait_for_one_worker(
    server: ServerProcess, wait_until: WaitUntil, *, other_than: int | None = None
) -> ProcessInfo:
    def single_new_worker() -> ProcessInfo | None:
        worker = one(server.embedded_workers())
        return worker if worker is not None and worker.pid != other_than else None

    found = wait_until(
        single_new_worker,
        timeout=START_TIMEOUT,
        message=lambda: f"one embedded worker; processes: {server.processes()}",
    )
    assert found is not None  # wait_until returns only a truthy value
    return found


def worker_pids_in_database() -> list[int]:
    return sorted(Worker.objects.values_list("pid", flat=True))


def wait_until_succeeded(result_ids: list[str], wait_until: WaitUntil) -> None:
    wait_until(
        lambda: all(state_of(result_id) == "succeeded" for result_id in result_ids),
        timeout=60,
        message=lambda: f"tasks succeeded: {[state_of(result_id) for result_id in result_ids]}",
    )


def test_runserver__autoreload_runs_one_worker_and_a_reload_replaces_it(
    web_server: ServerFactory, wait_until: WaitUntil
) -> None:
    server = web_server("runserver")
    first = wait_for_one_worker(server, wait_until)
    # Started by the serving child, not by the autoreloader watching files.
    assert children_of(server.pid) == [first.ppid]
    wait_until(lambda: worker_pids_in_database() == [first.pid], timeout=START_TIMEOUT)
    wait_until(server.answers, timeout=START_TIMEOUT)
    wait_until_succeeded([server.get("/enqueue/before-reload/")], wait_until)

    os.utime(REPO_ROOT / "tests" / "urls.py")  # what saving a file does

    second = wait_for_one_worker(server, wait_until, other_than=first.pid)
    assert not is_alive(first.pid)
    assert children_of(server.pid) == [second.ppid] != [first.ppid]
    wait_until(lambda: worker_pids_in_database() == [second.pid], timeout=START_TIMEOUT)
    wait_until(server.answers, timeout=START_TIMEOUT)
    wait_until_succeeded([server.get("/enqueue/after-reload/")], wait_until)
    assert server.embedded_workers() == [second]


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda sig: sig.name
)
def test_runserver__stopping_or_killing_the_server_stops_its_worker(
    web_server: ServerFactory, wait_until: WaitUntil, sig: signal.Signals
) -> None:
    server = web_server("runserver", "--noreload")
    worker = wait_for_one_worker(server, wait_until)
    wait_until(lambda: worker_pids_in_database() == [worker.pid], timeout=START_TIMEOUT)

    os.kill(server.pid, sig)

    wait_until(
        lambda: not server.processes(),
        timeout=STOP_TIMEOUT,
        message=lambda: f"no process left; left: {server.processes()}",
    )
    # However the server went, the worker stopped gracefully: its row is gone.
    assert worker_pids_in_database() == []


def test_runserver__sigterm_to_the_autoreloader_group_stops_everything(
    web_server: ServerFactory, wait_until: WaitUntil
) -> None:
    server = web_server("runserver")
    wait_for_one_worker(server, wait_until)

    os.killpg(server.pid, signal.SIGTERM)  # what a terminal's Ctrl-C or systemd does, with TERM

    wait_until(lambda: not server.processes(), timeout=STOP_TIMEOUT)


def test_runserver__a_killed_worker_is_restarted(
    web_server: ServerFactory, wait_until: WaitUntil
) -> None:
    server = web_server("runserver", "--noreload")
    first = wait_for_one_worker(server, wait_until)

    os.kill(first.pid, signal.SIGKILL)

    second = wait_for_one_worker(server, wait_until, other_than=first.pid)
    wait_until(lambda: second.pid in worker_pids_in_database(), timeout=START_TIMEOUT)
    wait_until(server.answers, timeout=START_TIMEOUT)
    wait_until_succeeded([server.get("/enqueue/after-restart/")], wait_until)


def test_gunicorn__three_workers_run_one_worker_and_a_standby_takes_over(
    web_server: ServerFactory, wait_until: WaitUntil
) -> None:
    server = web_server("gunicorn", "--workers", "3")
    wait_until(
        lambda: server.output().count("standing by") >= 2,
        timeout=START_TIMEOUT,
        message=lambda: f"two standby servers; output:\n{server.output()}",
    )
    first = wait_for_one_worker(server, wait_until)
    assert server.output().count("this process runs the worker") == 1
    wait_until(lambda: worker_pids_in_database() == [first.pid], timeout=START_TIMEOUT)
    wait_until(server.answers, timeout=START_TIMEOUT)
    wait_until_succeeded([server.get(f"/enqueue/g{n}/") for n in range(6)], wait_until)

    os.kill(first.ppid, signal.SIGKILL)  # the gunicorn worker holding the lock

    second = wait_for_one_worker(server, wait_until, other_than=first.pid)
    assert second.ppid != first.ppid
    # The orphaned worker got SIGTERM from the kernel and may still be handing tasks back.
    wait_until(lambda: not is_alive(first.pid), timeout=STOP_TIMEOUT)
    wait_until(lambda: worker_pids_in_database() == [second.pid], timeout=START_TIMEOUT)
    wait_until_succeeded([server.get("/enqueue/after-takeover/")], wait_until)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=signal_name)
def test_gunicorn__stopping_or_killing_the_arbiter_leaves_no_worker(
    web_server: ServerFactory, wait_until: WaitUntil, sig: signal.Signals
) -> None:
    server = web_server("gunicorn", "--workers", "3")
    worker = wait_for_one_worker(server, wait_until)

    os.kill(server.pid, sig)

    wait_until(
        lambda: not server.processes(),
        timeout=STOP_TIMEOUT,
        message=lambda: f"no process left; left: {server.processes()}",
    )
    assert not is_alive(worker.pid)


def test_uvicorn__asgi_runs_one_worker_and_stops_it(
    web_server: ServerFactory, wait_until: WaitUntil
) -> None:
    server = web_server("uvicorn")
    wait_for_one_worker(server, wait_until)
    wait_until(server.answers, timeout=START_TIMEOUT)
    wait_until_succeeded([server.get("/enqueue/asgi/")], wait_until)

    os.kill(server.pid, signal.SIGTERM)

    wait_until(lambda: not server.processes(), timeout=STOP_TIMEOUT)


def test_runserver__leaves_a_worker_started_by_hand_alone(
    web_server: ServerFactory, worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    by_hand = worker_process("--concurrency", "1")
    wait_until(lambda: by_hand.pid in worker_pids_in_database(), timeout=START_TIMEOUT)
    server = web_server("runserver", "--noreload")
    embedded = wait_for_one_worker(server, wait_until)
    wait_until(
        lambda: worker_pids_in_database() == sorted([by_hand.pid, embedded.pid]),
        timeout=START_TIMEOUT,
    )

    os.kill(server.pid, signal.SIGTERM)

    wait_until(lambda: not server.processes(), timeout=STOP_TIMEOUT)
    assert worker_pids_in_database() == [by_hand.pid]
    assert by_hand.popen.poll() is None


@pytest.mark.only_on("sqlite")
def test_unmigrated_database__one_warning_then_the_worker_starts_after_migrate(
    web_server: ServerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    env = {"TASKMILL_TEST_DB_NAME": str(tmp_path / "fresh.sqlite3")}
    server = web_server("runserver", "--noreload", env=env)
    wait_until(lambda: "not migrated" in server.output(), timeout=START_TIMEOUT)
    wait_until(server.answers, timeout=START_TIMEOUT)
    assert server.worker_processes() == []

    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
        cwd=REPO_ROOT,
        env=server_env(env),
        check=True,
        timeout=300,
    )

    wait_for_one_worker(server, wait_until)
    assert server.output().count("not migrated") == 1


def test_management_commands__do_not_autostart() -> None:
    shown = subprocess.run(
        [
            *(sys.executable, "-m", "django", "shell", "-c"),
            "from taskmill.autostart import current_keeper; print(current_keeper())",
        ],
        cwd=REPO_ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    assert shown.stdout.strip().splitlines()[-1] == "None"
    assert "autostart" not in shown.stderr


def test_worker__with_a_parent_pid_that_is_not_its_parent_exits_at_once() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "django", "taskmill", "worker", "--parent-pid=1"],
        cwd=REPO_ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert finished.returncode == 1
    assert "the process that started this worker (pid 1) is gone; exiting" in finished.stderr
