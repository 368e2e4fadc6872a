"""Keeping what a task does inside its attempt: the processes it starts and the memory it keeps.

- Nothing a task started outlives its attempt. Each child process is a child subreaper
  (Linux prctl PR_SET_CHILD_SUBREAPER), so a grandchild that double-forks or calls setsid()
  to get away is re-parented to the child, not to init, and stays findable below it. After
  every attempt the child kills all its descendants (end_descendants). When the supervisor
  kills a child outright it stops it first (SIGSTOP: it can fork no more), kills every
  descendant, then the child's process group and the child (kill_tree). A child that dies
  by itself (a crash) takes its process group with it (reap).
- A child whose resident memory is over --max-memory-per-child after a task is replaced
  (over_memory_limit, read from /proc/<pid>/statm).

Elsewhere than Linux there is no subreaper and no /proc: only the child's process group is
killed, and the memory limit can't be read (the worker says so when it starts).
"""

import contextlib
import os
import re
import signal
import time
from pathlib import Path
from typing import Final

from ..libc import linux_libc

PROC: Final = Path("/proc")
PR_SET_CHILD_SUBREAPER: Final = 36
# Killing a tree is repeated until nothing is left below it: a process forked while its
# parent was being killed shows up in the next round. Bounded, for processes stuck in the
# kernel (state D) that SIGKILL can't end at once.
KILL_TREE_SECONDS: Final = 2.0
KILL_ROUND_PAUSE: Final = 0.005

SIZE_UNITS: Final = {
    "": 1024,  # a plain number counts KiB, as Celery's --max-memory-per-child does
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
SIZE_PATTERN: Final = re.compile(r"\s*(\d+)\s*([kmg]i?b)?\s*", re.IGNORECASE)


def parse_memory_size(text: str, option: str) -> int:
    """Return the size `text` gives, in bytes; raise ValueError naming `option` if unreadable.

    Forms: 512MiB, 200MB, 2GiB, 300000 (a plain number counts KiB). MB and GB are powers of
    1000, MiB and GiB powers of 1024, as their names say.
    """
    match = SIZE_PATTERN.fullmatch(text)
    size = int(match[1]) * SIZE_UNITS[(match[2] or "").lower()] if match else 0
    if not size:
        raise ValueError(
            f"{option} {text!r} isn't a size above 0; give a whole number with a unit, "
            "e.g. 512MiB or 200MB (a plain number counts KiB, as in Celery)."
        )
    return size


def format_size(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB"


# -- Memory -------------------------------------------------------------------------------


def can_read_memory() -> bool:
    """True where a process's resident memory can be read (Linux /proc)."""
    return (PROC / "self" / "statm").exists()


def resident_memory(pid: int) -> int | None:
    """Return pid's resident set size in bytes, or None if it can't be read (gone, no /proc)."""
    try:
        # statm, not status: a few numbers instead of a page of text; read after every task.
        resident_pages = int(_read(f"/proc/{pid}/statm").split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _read(path: str, size: int = 4096) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def over_memory_limit(pid: int, limit: int) -> int | None:
    """Return pid's resident memory when it is above limit (bytes), else None."""
    resident = resident_memory(pid)
    return resident if resident is not None and resident > limit else None


# -- Processes ------------------------------------------------------------------------------


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children; False where unsupported."""
    libc = linux_libc()
    if libc is None:
        return False
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def _live_processes_by_parent() -> dict[int, list[int]]:
    by_parent: dict[int, list[int]] = {}
    try:
        entries = list(os.scandir(PROC))
    except OSError:
        return by_parent
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{entry.path}/stat", "rb") as stat:
                # The command name may hold spaces and parentheses: fields follow the last ")".
                state, ppid = stat.read().rpartition(b")")[2].split()[:2]
        except (OSError, ValueError):
            continue  # ended while we looked
        if state not in (b"Z", b"X"):  # a zombie can't fork; its parent reaps it
            by_parent.setdefault(int(ppid), []).append(int(entry.name))
    return by_parent


def descendants(root: int) -> list[int]:
    """Return the live processes below root: children, grandchildren, and so on."""
    by_parent = _live_processes_by_parent()
    found: list[int] = []
    below = [root]
    while below:
        for pid in by_parent.get(below.pop(), []):
            found.append(pid)
            below.append(pid)
    return found


def kill_descendants(root: int) -> int:
    """SIGKILL every process below root, round after round until none is left; return how
    many were killed. root must be a subreaper, or stopped, for none to slip away."""
    killed: set[int] = set()
    deadline = time.monotonic() + KILL_TREE_SECONDS
    while time.monotonic() < deadline:
        found = descendants(root)
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed.update(found)
        time.sleep(KILL_ROUND_PAUSE)  # SIGKILL lands asynchronously
    return len(killed)


def kill_tree(pid: int) -> None:
    """SIGKILL pid, every process below it and its process group (pid leads it).

    Called by the supervisor on its own, unreaped child, so the pid can't have been reused.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGSTOP)  # frozen: it forks no more, and its orphans still come to it
    kill_descendants(pid)
    _kill_group(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _has_children() -> bool:
    # Runs after every attempt, so one system call: waitid() on any child, without reaping
    # (WNOWAIT) or waiting (WNOHANG), fails with ECHILD exactly when this process has no child,
    # live or zombie, on any of its threads. Orphans re-parented to a subreaper are its
    # children too. Reading /proc/<pid>/task/*/children instead costs about 20 µs.
    if not hasattr(os, "waitid"):
        return True  # the scan below finds whether any are left
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def end_descendants() -> int:
    """In a child: kill every process this one started, directly or not, and reap them;
    return how many were killed."""
    if not _has_children():
        return 0
    killed = kill_descendants(os.getpid())
    _reap_children()
    return killed


def _reap_children() -> None:
    deadline = time.monotonic() + KILL_TREE_SECONDS
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # none left
        if pid == 0:
            time.sleep(KILL_ROUND_PAUSE)  # killed, not yet exited


def reap(pid: int) -> int | None:
    """Return the exit code of the supervisor's child pid once it ended (reaping it), else None.

    Before reaping, kill what is left in its process group: processes the task started that
    the child couldn't end itself because it crashed. Done while pid is still a zombie, so the
    group's number (the child's pid) can't have been given to another process yet.
    """
    if not hasattr(os, "waitid"):  # some POSIX builds: reap first, then the group
        return _reap_then_kill_group(pid)
    try:
        ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return -1
    if ended is None:
        return None
    _kill_group(pid)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _reap_then_kill_group(pid: int) -> int | None:
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1
    if reaped == 0:
        return None
    _kill_group(pid)  # at once: the number is free, but a new group taking it is unlikely
    return os.waitstatus_to_exitcode(status)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
