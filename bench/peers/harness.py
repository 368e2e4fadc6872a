"""What every peer runner shares: the side channel tasks report through, the timings, the
worker processes, and the JSON a runner writes. Standard library only (peers venv).

The side channel: each task appends one line "tag started finished" (time.time() at the
start and the end of the task function) to a file of its own process, in the directory named
by BENCH_PEER_MARKS. One O_APPEND write per task is the cheapest record that every peer can
make the same way, whatever its result store; the runner reads the files to know when a
drain is done and when each latency task began.
"""

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

MARKS_VARIABLE: Final = "BENCH_PEER_MARKS"
TASK_TIMEOUT: Final = 30.0
POLL: Final = 0.002
STOP_TIMEOUT: Final = 15.0

_marks_fd: int | None = None


def record_mark(tag: str, started: float) -> None:
    """Called by a peer's task: append "tag started finished" to this process's marks file."""
    global _marks_fd  # one file per worker process, opened on first use
    if _marks_fd is None:
        folder = os.environ[MARKS_VARIABLE]
        _marks_fd = os.open(
            os.path.join(folder, f"{os.getpid()}.marks"),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            0o644,
        )
    os.write(_marks_fd, f"{tag} {started!r} {time.time()!r}\n".encode())


@dataclass(frozen=True, slots=True, kw_only=True)
class Mark:
    tag: str
    started: float
    finished: float


def read_marks(folder: Path) -> list[Mark]:
    marks = []
    for path in folder.glob("*.marks"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:  # a line being written has no newline yet: skipped
                marks.append(Mark(tag=parts[0], started=float(parts[1]), finished=float(parts[2])))
    return marks


def clear_marks(folder: Path) -> None:
    for path in folder.glob("*.marks"):
        path.write_bytes(b"")  # truncated, not deleted: a worker may hold it open (O_APPEND)


def wait_for_marks(
    folder: Path, count: int, timeout: float, what: str, worker: "PeerWorker"
) -> list[Mark]:
    """Wait until `count` marks are written; fail early if the worker exits."""
    deadline = time.monotonic() + timeout
    while True:
        marks = read_marks(folder)
        if len(marks) >= count:
            return marks
        if worker.popen.poll() is not None:
            raise RuntimeError(
                f"the worker exited {worker.popen.returncode} while waiting for {what}:\n"
                + worker.log_tail()
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL)


@dataclass(frozen=True, slots=True)
class PeerWorker:
    popen: "subprocess.Popen[bytes]"
    started_wall: float  # time.time() just before it was started
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running_worker(
    command: Sequence[str], env: dict[str, str], log_path: Path
) -> Iterator[PeerWorker]:
    """Start the peer's worker command in a session of its own; stop its whole group after."""
    with log_path.open("ab") as log:
        started = time.time()
        popen = subprocess.Popen(  # noqa: S603 - the peer's own worker command
            list(command),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = PeerWorker(popen, started, log_path)
    try:
        yield worker
    finally:
        _stop_group(popen)


def _stop_group(popen: "subprocess.Popen[bytes]") -> None:
    if popen.poll() is None:
        _signal_group(popen.pid, signal.SIGTERM)
        try:
            popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _signal_group(popen.pid, signal.SIGKILL)
            popen.wait()
    _signal_group(popen.pid, signal.SIGKILL)  # children left in the group, if any


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1]


def figure(samples: Sequence[float], unit: str) -> dict[str, Any]:
    return {"value": statistics.median(samples), "unit": unit, "samples": list(samples)}


def rate(count: int, action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    for _ in range(count):
        action()
    return count / (time.perf_counter() - start)


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """The parts of bench.plan.Plan a peer runner needs, passed as JSON on its command line."""

    repeats: int
    single_enqueues: int
    bulk_enqueues: int
    drain_tasks: int
    concurrency: int
    latency_samples: int
    latency_spacing: float
    settle_seconds: float
    idle_seconds: float


def parse_arguments(argv: Sequence[str], description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--plan", required=True, help="the workload, as JSON (bench.plan.Plan)")
    parser.add_argument("--work", type=Path, required=True, help="a scratch folder of its own")
    parser.add_argument("--out", type=Path, required=True, help="write the result JSON here")
    options = parser.parse_args(argv)
    fields = set(Workload.__dataclass_fields__)
    options.workload = Workload(
        **{key: value for key, value in json.loads(options.plan).items() if key in fields}
    )
    return options


def worker_env(marks: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env[MARKS_VARIABLE] = str(marks)
    env["PYTHONUNBUFFERED"] = "1"
    root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def say(peer: str, message: str) -> None:
    sys.stderr.write(f"[{peer}] {message}\n")
    sys.stderr.flush()
