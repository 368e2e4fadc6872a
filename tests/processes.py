"""Real worker processes for tests: start `python -m django taskmill worker`, watch, stop.

The `worker_process` fixture in conftest.py is the usual way in; this module holds the
process handle so tests can annotate with `WorkerFactory` and `WorkerProcess`.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from django.db import connections

REPO_ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 10.0
KILL_TIMEOUT = 5.0


class WorkerProcess:
    """One worker started in a session (and so a process group) of its own."""

    def __init__(self, popen: "subprocess.Popen[bytes]", log_path: Path, args: tuple[str, ...]):
        self.popen = popen
        self.log_path = log_path
        self.args = args

    def __repr__(self) -> str:
        return f"<WorkerProcess pid={self.pid} args={' '.join(self.args)!r}>"

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def pgid(self) -> int:
        """The process group id: the worker leads its own group (start_new_session)."""
        return self.popen.pid

    def output(self) -> str:
        """Return everything the worker wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def send(self, sig: signal.Signals) -> None:
        """Send `sig` to the worker's supervisor process alone."""
        os.kill(self.pid, sig)

    def send_group(self, sig: signal.Signals) -> None:
        """Send `sig` to the whole process group: the supervisor and its children."""
        os.killpg(self.pgid, sig)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the worker to exit and return its exit code.

        Raise AssertionError with the worker's output if it is still running after `timeout`.
        """
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self!r} still running after {timeout}s; output:\n{self.output()}"
            ) from None

    def stop(self, timeout: float = STOP_TIMEOUT) -> list[int]:
        """SIGTERM the group, SIGKILL it after `timeout`; return pids still alive after that."""
        if self.popen.poll() is None or group_members(self.pgid):
            _signal_group(self.pgid, signal.SIGTERM)
        if not _wait_for_group(self, time.monotonic() + timeout):
            _signal_group(self.pgid, signal.SIGKILL)
            _wait_for_group(self, time.monotonic() + KILL_TIMEOUT)
        return group_members(self.pgid)


class WorkerFactory(Protocol):
    """The `worker_process` fixture: start a worker with these CLI arguments."""

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, command_prefix: Sequence[str] = ()
    ) -> WorkerProcess: ...


def start_worker(
    args: tuple[str, ...],
    *,
    env: Mapping[str, str],
    log_path: Path,
    command_prefix: Sequence[str] = (),
) -> WorkerProcess:
    """Start `python -m django taskmill worker *args` with its output going to `log_path`.

    `command_prefix` runs the worker through another command, such as
    `ip netns exec NAME`; it must exec the worker in place, so the pid stays the worker's.
    """
    command = [*command_prefix, sys.executable, "-m", "django", "taskmill", "worker", *args]
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(popen, log_path, args)


def group_members(pgid: int) -> list[int]:
    """Return the live (not zombie) pids in process group `pgid`; [] when the group is gone.

    `os.killpg(pgid, 0)` is the portable test. A zombie still counts for it, and orphaned
    children are reaped by whatever adopted them (pid 1 in a container may never do so), so
    on Linux the members are confirmed from /proc.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    proc = Path("/proc")
    if not proc.is_dir():
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat.rpartition(")")[2].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _wait_for_group(worker: WorkerProcess, deadline: float) -> bool:
    """Reap the leader and wait until its group is empty; return False at the deadline."""
    try:
        worker.popen.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    while group_members(worker.pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a worker: the test settings and this test's live database names."""
    env = dict(os.environ)
    pythonpath = [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=os.pathsep.join(pythonpath),
        PYTHONUNBUFFERED="1",
        TASKMILL_TEST_DB=os.environ.get("TASKMILL_TEST_DB", "sqlite"),
        TASKMILL_TEST_DB_NAME=str(connections["default"].settings_dict["NAME"]),
    )
    if "queue" in connections.settings:
        env["TASKMILL_TEST_QUEUE_DB_NAME"] = str(connections["queue"].settings_dict["NAME"])
    env.update(extra or {})
    return env
