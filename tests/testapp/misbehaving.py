"""Tasks that misbehave with processes, memory and signals, for the containment tests.

Each is bounded so a failure of containment can't harm the machine: the process tree is a
few dozen sleepers that end by themselves after LIFETIME seconds, and the leak grows only
when called.
"""

import os
import signal
import time
from pathlib import Path

from taskmill import task

# A sleeper left behind by a failure still ends by itself, after this long.
LIFETIME = 120.0

# Module-level, so it survives from one task to the next in the same child process.
_hoard: list[bytearray] = []


@task
def current_pid() -> int:
    return os.getpid()


@task
def leak_memory(megabytes: int) -> int:
    """Keep `megabytes` more in the child for good (pages written, so resident); return its pid."""
    _hoard.append(bytearray(b"\x01") * (megabytes * 1024 * 1024))
    return os.getpid()


def tree_size(width: int, depth: int) -> int:
    """How many processes fork_bomb starts: width + width**2 + ... over depth levels."""
    size, level = 0, 1
    for _ in range(depth):
        level *= width
        size += level
    return size


def _sleep_out(gate: Path, *, below: int, width: int, escape: bool) -> None:
    """Fork `width` sleepers, each forking its own `below` levels further down."""
    for _ in range(width):
        if os.fork() != 0:
            continue
        try:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL ends them
            if escape:
                os.setsid()  # out of the child's process group and session
                if os.fork() != 0:  # double fork: orphan the real sleeper at once
                    os._exit(0)
            (gate / f"bomb-{os.getpid()}").touch()
            if below > 1:
                _sleep_out(gate, below=below - 1, width=width, escape=escape)
            time.sleep(LIFETIME)
        finally:
            os._exit(0)


@task
def fork_bomb(gate: str, width: int, depth: int, escape: bool, then: str) -> int:
    """Start width + width**2 + ... (depth levels) sleeping processes, each writing
    `gate`/bomb-<pid>, escaping the process group if `escape`; once all are started, `then`:
    "return", "sleep" (until stopped), "hang" (ignoring SIGTERM: until killed) or "crash"
    (os._exit(3))."""
    gate_dir = Path(gate)
    _sleep_out(gate_dir, below=depth, width=width, escape=escape)
    expected = tree_size(width, depth)
    deadline = time.monotonic() + LIFETIME
    while len(list(gate_dir.glob("bomb-*"))) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    (gate_dir / f"started-{os.getpid()}").touch()
    if then == "crash":
        os._exit(3)
    if then == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if then in ("sleep", "hang"):
        time.sleep(LIFETIME)
    return expected


@task
def ignore_stop_signals(gate: str, seconds: float = LIFETIME) -> int:
    """Ignore and block SIGTERM and SIGINT, mark `gate`/started-<pid>, spin for `seconds`,
    then return the pid (leaving the signals ignored and blocked)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    (Path(gate) / f"started-{os.getpid()}").touch()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sum(range(10_000))  # busy, not sleeping: nothing to interrupt
    return os.getpid()


@task
def sleep_until_stopped(gate: str) -> None:
    """Mark `gate`/sleeping-<pid>, sleep; mark `gate`/unwound-<pid> if SIGTERM unwinds it."""
    (Path(gate) / f"sleeping-{os.getpid()}").touch()
    try:
        time.sleep(LIFETIME)
    finally:
        (Path(gate) / f"unwound-{os.getpid()}").touch()
