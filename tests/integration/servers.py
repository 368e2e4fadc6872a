"""Real web servers for the autostart tests: runserver, gunicorn, uvicorn, on the test database.

Every process a server starts, even one orphaned after its server was killed, carries the
server's TASKMILL_TEST_MARK in its environment, so a test can find (and its teardown kill)
every one of them through /proc.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.processes import REPO_ROOT, worker_env

MARK_VARIABLE = "TASKMILL_TEST_MARK"
# A short lease: a standby server retries the lock every LEASE_SECONDS / 2 = 2 s.
AUTOSTART_SETTINGS = {"AUTOSTART": True, "LEASE_SECONDS": 4, "HEARTBEAT_SECONDS": 1}


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    ppid: int
    argv: tuple[str, ...]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(kind: str, port: int, *extra: str) -> list[str]:
    """The command line of a server of this kind on 127.0.0.1:port."""
    if kind == "runserver":
        return [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", *extra]
    if kind == "gunicorn":
        return [
            *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
            # Workers notice a killed arbiter within timeout / 2; shorter would let the arbiter
            # kill workers still setting Django up on a busy machine.
            *("--timeout", "10", *extra, "django.core.wsgi:get_wsgi_application()"),
        ]
    if kind == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", "--port", str(port), "--factory", *extra),
            "django.core.asgi:get_asgi_application",
        ]
    raise ValueError(f"unknown server kind {kind!r}")


class ServerProcess:
    """A web server started in a session of its own, with its own mark."""

    def __init__(
        self, command: list[str], *, port: int, env: dict[str, str], log_path: Path
    ) -> None:
        self.mark = uuid.uuid4().hex
        self.log_path = log_path
        self.port = port
        env = {**env, MARK_VARIABLE: self.mark}
        with log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str) -> str:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            text: str = response.read().decode()
            return text

    def answers(self) -> bool:
        try:
            self.get("/admin/login/")
        except OSError:
            return False
        return True

    def processes(self) -> list[ProcessInfo]:
        """Live processes carrying this server's mark (the server, its workers, orphans)."""
        return marked_processes(self.mark)

    def embedded_workers(self) -> list[ProcessInfo]:
        """Autostarted worker supervisors still attached to the process that started them."""
        return [
            info
            for info in self.processes()
            if _is_worker(info) and f"--parent-pid={info.ppid}" in info.argv
        ]

    def worker_processes(self) -> list[ProcessInfo]:
        """Every worker process of this server: supervisors and their children, orphaned or not."""
        return [info for info in self.processes() if _is_worker(info)]

    def kill_everything(self, timeout: float = 15.0) -> list[ProcessInfo]:
        """SIGKILL every marked process; return those still alive after timeout."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        while (left := self.processes()) and time.monotonic() < deadline:
            for info in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(info.pid, signal.SIGKILL)
            time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(1)
        return self.processes()


def _is_worker(info: ProcessInfo) -> bool:
    return "taskmill" in info.argv and "worker" in info.argv


def marked_processes(mark: str) -> list[ProcessInfo]:
    found = []
    needle = f"{MARK_VARIABLE}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if needle in environ.split(b"\0") and state not in ("Z", "X"):
            found.append(
                ProcessInfo(
                    pid=int(entry.name),
                    ppid=int(ppid),
                    argv=tuple(part.decode() for part in argv.split(b"\0") if part),
                )
            )
    return found


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a server on the test database, with AUTOSTART on."""
    env = worker_env({"TASKMILL_TEST_SETTINGS": json.dumps(AUTOSTART_SETTINGS)})
    env.pop("RUN_MAIN", None)
    env.update(extra or {})
    return env
