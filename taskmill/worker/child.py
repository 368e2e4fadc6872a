"""The main loop of a child process: receive a record, run it, send back the Outcome.

A child dies with its supervisor (parent-death signal, and a watchdog thread where that
signal doesn't exist) so no user code ever runs unsupervised.
"""

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Final, NoReturn

from . import payload
from .runner import announce_finished, run_attempt

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG: Final = 1
PARENT_CHECK_INTERVAL: Final = 1.0


def _die_with_parent(parent_pid: int) -> None:
    libc_name = ctypes.util.find_library("c")
    prctl_set = False
    if sys.platform.startswith("linux") and libc_name:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        prctl_set = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    # The parent may have died before prctl took effect; and elsewhere prctl doesn't exist.
    if os.getppid() != parent_pid:
        os._exit(1)
    if not prctl_set:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_INTERVAL)
    os._exit(1)


_terminating = threading.Event()


def _on_sigterm(signum: int, frame: object) -> None:
    # Unwinds the running task (its finally blocks run) during the kill grace period; the
    # flag makes the child exit after reporting, even if the task swallowed the SystemExit.
    _terminating.set()
    raise SystemExit(128 + signum)


def _reset_signals() -> None:
    signal.set_wakeup_fd(-1)
    # Its own process group: a Ctrl-C or a group SIGTERM aimed at the supervisor must not
    # interrupt tasks the supervisor means to let finish.
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    for name in ("SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


def _exit(code: int) -> NoReturn:
    # os._exit skips finalizers: the supervisor's database sockets, inherited through fork,
    # must not be shut down from here.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def child_main(conn: Connection, parent_pid: int) -> NoReturn:
    """Serve the supervisor until told to stop or until the pipe closes."""
    _reset_signals()
    _die_with_parent(parent_pid)
    try:
        while True:
            try:
                raw = conn.recv_bytes()
            except (EOFError, OSError):
                _exit(0)
            _handle(conn, payload.decode(raw))
    except SystemExit as stop:
        _exit(stop.code if isinstance(stop.code, int) else 1)
    except BaseException:
        logger.exception("child process failed pid=%s", os.getpid())
        _exit(70)


def _handle(conn: Connection, message: dict[str, object]) -> None:
    kind = message["type"]
    data = message.get("record")
    record = payload.record_from_json(data) if isinstance(data, dict) else None
    if kind == "run" and record is not None:
        outcome = run_attempt(record)
        conn.send_bytes(payload.outcome_message(str(record.id), outcome))
        if _terminating.is_set():
            _exit(128 + signal.SIGTERM)
    elif kind == "finished" and record is not None:
        announce_finished(record)
    elif kind == "stop":
        _exit(0)
