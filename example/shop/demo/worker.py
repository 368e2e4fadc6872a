"""The demo's worker: a real `manage.py taskmill worker` process in a process group of its own,
its output going to a file that the demo shows when something goes wrong."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# Between two SIGTERMs, so the worker sees two signals (a second one means "stop now").
SECOND_SIGNAL_AFTER = 0.5
FORCED_STOP_TIMEOUT = 5.0


class DemoWorker:
    """One `taskmill worker` started by the demo."""

    def __init__(self, popen: "subprocess.Popen[bytes]", log_path: Path) -> None:
        self.popen = popen
        self.log_path = log_path

    @classmethod
    def start(cls, command: list[str], *, cwd: Path, log_path: Path) -> "DemoWorker":
        """Start `python *command` in a new session, writing its output to log_path."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log_path.open("wb") as log:
            popen = subprocess.Popen(  # noqa: S603 - this interpreter running this project's manage.py
                [sys.executable, *command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(popen, log_path)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exit_code(self) -> int | None:
        """Return the worker's exit code, or None while it runs."""
        return self.popen.poll()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float) -> int | None:
        """Ask the worker to stop (SIGTERM) and wait; return its exit code.

        Return None if it was still running after timeout and had to be killed.
        """
        self._signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def stop_now(self) -> None:
        """Stop at once: two SIGTERMs (running tasks are killed and handed back), then SIGKILL."""
        self._signal(signal.SIGTERM)
        time.sleep(SECOND_SIGNAL_AFTER)
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(FORCED_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the worker's process group; its children die with it (parent-death signal)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def _signal(self, signum: signal.Signals) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signum)


@contextlib.contextmanager
def running_worker(command: list[str], *, cwd: Path, log_path: Path) -> Iterator[DemoWorker]:
    """Start a worker; whatever happens inside the block, leave no worker running after it."""
    worker = DemoWorker.start(command, cwd=cwd, log_path=log_path)
    try:
        yield worker
    finally:
        if worker.exit_code() is None:
            worker.stop_now()
