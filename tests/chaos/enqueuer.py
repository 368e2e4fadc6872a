"""A web process enqueueing through a database fault: `python -m tests.chaos.enqueuer OUT STOP KEY`.

Run with the environment of tests.processes.worker_env (the test settings, the test database's
name). It enqueues one ledger task per attempt, in autocommit, until the file STOP exists.
Each attempt is bracketed by close_old_connections(), as Django brackets each request, so a
connection that broke is dropped before the next attempt, as a web server would drop it.

Each attempt appends one JSON line to OUT: "n", "key", "t" (when it began), and either "id"
(the result id enqueue() returned) or "error" (the exception's class path) and "message". The
test then holds taskmill to account for every line: an id must be a task that runs; an error
must be one raised to the caller, never a task silently dropped.
"""

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

# A task whose own query meets the fault fails that attempt; later ones run on a new connection.
FAULT_TOLERANT: Final[dict[str, Any]] = {"max_attempts": 6, "retry_delay": 0.5}
# Between attempts: a steady stream of requests, not a loop that starves the workers.
PAUSE: Final = 0.02
# However the test ends, the enqueuer doesn't outlive it by much.
MAX_SECONDS: Final = 600.0


def run(out: Path, stop: Path, key_prefix: str) -> None:
    """Enqueue ledger tasks until `stop` exists, writing one line per attempt to `out`."""
    from django.db import close_old_connections

    from tests.testapp.tasks import ledger_task

    task = ledger_task.using(**FAULT_TOLERANT)
    deadline = time.monotonic() + MAX_SECONDS
    n = 0
    with out.open("a", encoding="utf-8") as lines:
        while not stop.exists() and time.monotonic() < deadline:
            key = f"{key_prefix}-{n}"
            entry: dict[str, object] = {"n": n, "key": key, "t": time.time()}
            close_old_connections()  # as on request_started
            try:
                entry["id"] = task.enqueue(key).id
            except Exception as error:  # every failure is written down, whatever its kind
                entry["error"] = f"{type(error).__module__}.{type(error).__qualname__}"
                entry["message"] = str(error)
            finally:
                close_old_connections()  # as on request_finished
            lines.write(json.dumps(entry) + "\n")
            lines.flush()
            n += 1
            time.sleep(PAUSE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One enqueue() call of the enqueuer, as it wrote it down."""

    n: int
    key: str
    t: float
    id: str | None = None
    error: str | None = None
    message: str = ""


class EnqueuerProcess:
    """The test's handle on one enqueuer process (started in a session of its own)."""

    def __init__(self, directory: Path, key_prefix: str, env: Mapping[str, str]) -> None:
        self.out = directory / f"enqueuer-{key_prefix}.jsonl"
        self.stop_file = directory / f"enqueuer-{key_prefix}.stop"
        self.log_path = directory / f"enqueuer-{key_prefix}.log"
        command = [sys.executable, "-m", "tests.chaos.enqueuer"]
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                [*command, str(self.out), str(self.stop_file), key_prefix],
                cwd=Path(__file__).resolve().parents[2],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def attempts(self) -> list[Attempt]:
        """Every attempt written down so far (a line being written is left for later)."""
        if not self.out.exists():
            return []
        found = []
        for line in self.out.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.endswith("\n"):
                found.append(Attempt(**json.loads(line)))
        return found

    def output(self) -> str:
        """What the process wrote to stdout and stderr (a traceback, if it died)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """Ask the enqueuer to stop after its current attempt; return its exit code.

        Raise AssertionError, after killing it, if it is still running after `timeout`.
        """
        self.stop_file.touch()
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the enqueuer did not stop within {timeout} s; output:\n{self.output()}"
            ) from None

    def kill(self) -> None:
        """Kill the enqueuer at once (a teardown after a failed test)."""
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.wait(10)


if __name__ == "__main__":
    import django

    django.setup()
    run(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
