"""Dying with a parent process: the kernel's parent-death signal, or a watchdog thread where
that signal doesn't exist.

A worker started by another process (the web server's autostart) gets SIGTERM, so running
tasks are handed back before it exits; a worker's children are killed outright.
"""

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Final

from ..libc import linux_libc

PR_SET_PDEATHSIG: Final = 1
PARENT_CHECK_INTERVAL: Final = 1.0


def stop_with_parent(parent_pid: int) -> None:
    """Make this process receive SIGTERM when parent_pid, its parent, exits.

    Exit at once if that parent is already gone (or never was this process's parent).
    """
    prctl_set = set_parent_death_signal(signal.SIGTERM)
    # The parent may have died before prctl took effect: then nothing would ever signal us.
    if os.getppid() != parent_pid:
        sys.exit(f"the process that started this worker (pid {parent_pid}) is gone; exiting")
    if not prctl_set:
        watch_parent(parent_pid, lambda: os.kill(os.getpid(), signal.SIGTERM))


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel for signum when the parent exits; False where that isn't available."""
    libc = linux_libc()
    if libc is None:
        return False
    return bool(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0)


def watch_parent(parent_pid: int, on_gone: Callable[[], object]) -> None:
    """Call on_gone from a daemon thread once parent_pid is no longer this process's parent."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_INTERVAL)
        on_gone()

    threading.Thread(target=watch, name="taskmill-parent-watch", daemon=True).start()
