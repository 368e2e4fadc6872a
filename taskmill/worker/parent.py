"""A worker started by another process (the web server's autostart) stops when that process
dies: a SIGTERM from the kernel's parent-death signal, or from a watchdog thread where that
signal doesn't exist. SIGTERM, not SIGKILL, so running tasks are handed back before it exits.
"""

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from typing import Final

PR_SET_PDEATHSIG: Final = 1
PARENT_CHECK_INTERVAL: Final = 1.0


def stop_with_parent(parent_pid: int) -> None:
    """Make this process receive SIGTERM when parent_pid, its parent, exits.

    Exit at once if that parent is already gone (or never was this process's parent).
    """
    prctl_set = _set_parent_death_signal(signal.SIGTERM)
    # The parent may have died before prctl took effect: then nothing would ever signal us.
    if os.getppid() != parent_pid:
        sys.exit(f"the process that started this worker (pid {parent_pid}) is gone; exiting")
    if not prctl_set:
        threading.Thread(
            target=_watch_parent, args=(parent_pid,), name="taskmill-parent-watch", daemon=True
        ).start()


def _set_parent_death_signal(signum: int) -> bool:
    libc_name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    return bool(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0)


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_INTERVAL)
    os.kill(os.getpid(), signal.SIGTERM)
