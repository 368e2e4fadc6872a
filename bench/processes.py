"""Worker processes for the bench: start `python -m django taskmill worker`, stop its whole
process tree, and read its CPU time and memory from /proc (Linux)."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
# Each worker the suite starts leaves its pid here, so the orchestrating process can kill
# what a crashed or killed suite left behind.
PID_DIR_VARIABLE: Final = "BENCH_PID_DIR"
STOP_TIMEOUT: Final = 15.0
KILL_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class Worker:
    """A worker supervisor, leader of its own process group."""

    popen: "subprocess.Popen[bytes]"
    log_path: Path
    started: float  # time.monotonic() just before it was started
    started_wall: float  # time.time() at the same moment, to compare with rows' timestamps

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no worker log)"
        return "\n".join(text.splitlines()[-lines:])


def start_worker(args: list[str], *, env: Mapping[str, str], log_path: Path) -> Worker:
    """Start a worker with these CLI arguments; its output goes to log_path, never a pipe."""
    command = [sys.executable, "-m", "django", "taskmill", "worker", *args]
    with log_path.open("ab") as log:
        started, started_wall = time.monotonic(), time.time()
        popen = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            command,
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_dir = os.environ.get(PID_DIR_VARIABLE)
    if pid_dir:
        (Path(pid_dir) / str(popen.pid)).touch()
    return Worker(popen, log_path, started, started_wall)


def stop_worker(worker: Worker) -> None:
    """SIGTERM the worker, SIGKILL it and its children if they outlast the timeouts."""
    tree = process_tree(worker.pid)
    if worker.popen.poll() is None:
        _signal_group(worker.pid, signal.SIGTERM)
        try:
            worker.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _signal_group(worker.pid, signal.SIGKILL)
            worker.popen.wait(KILL_TIMEOUT)
    # Children lead process groups of their own and die with their supervisor; make sure.
    _kill_leftovers(tree)


def kill_strays(pid_dir: Path) -> list[int]:
    """Kill every worker listed in pid_dir (and its children) that still runs; return them."""
    killed = []
    for entry in pid_dir.iterdir():
        pid = int(entry.name)
        if _is_worker(pid):
            tree = process_tree(pid)
            _signal_group(pid, signal.SIGKILL)
            _kill_leftovers(tree)
            killed.append(pid)
    return killed


def _is_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"taskmill" in command and b"worker" in command and _is_alive(pid)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_leftovers(pids: list[int]) -> None:
    deadline = time.monotonic() + KILL_TIMEOUT
    for pid in pids:
        while _is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _is_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def _is_alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def process_tree(pid: int) -> list[int]:
    """Return pid and its live children (one level: a supervisor and its pool)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                children.append(int(entry.name))
    return [pid, *sorted(children)]


def cpu_seconds(pids: list[int]) -> float:
    """Return the user + system CPU time the processes used so far."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            # utime and stime are fields 14 and 15 of stat, [11] and [12] after the name.
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def memory_mb(pids: list[int], field: str) -> float:
    """Sum a kB field over the processes: VmRSS from status, or Pss from smaps_rollup."""
    source = "status" if field.startswith("Vm") else "smaps_rollup"
    total_kb = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/{source}").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith(f"{field}:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024
