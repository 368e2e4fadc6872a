"""The main loop of a child process: receive records, run them in order, send back Outcomes.

A child dies with its supervisor (parent-death signal, and a watchdog thread where that
signal doesn't exist) so no user code ever runs unsupervised.
"""

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, NoReturn

from ..context import STOP, ProgressReport
from ..models import TaskRecord
from . import containment, payload
from .capture import ChildOutput, capturing_records
from .frames import frame, write_all
from .parent import set_parent_death_signal, watch_parent
from .pipeline import Slot
from .runner import Reporting, announce_finished, run_attempt

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutputPipes:
    """The write ends, in a child, of the pipes its supervisor reads output from."""

    stdout: int
    stderr: int
    log: int


def _die_with_parent(parent_pid: int) -> None:
    prctl_set = set_parent_death_signal(signal.SIGKILL)
    # The parent may have died before prctl took effect; and elsewhere prctl doesn't exist.
    if os.getppid() != parent_pid:
        os._exit(1)
    if not prctl_set:
        watch_parent(parent_pid, lambda: os._exit(1))


_terminating = threading.Event()


def _on_sigterm(signum: int, frame: object) -> None:
    # Unwinds the running task (its finally blocks run) during the kill grace period; the
    # flag makes the child exit after reporting, even if the task swallowed the SystemExit.
    # A task that checks is_cancelled() is left to stop by itself instead.
    _terminating.set()
    STOP.requested = True
    if not STOP.cooperative:
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


def _restore_signal_handling() -> None:
    # A task may have ignored or blocked SIGTERM; the next task must still stop when asked.
    # Handlers before the mask: a SIGTERM held back by the mask then reaches ours.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _end_leftover_processes() -> None:
    killed = containment.end_descendants()
    if killed:
        logger.warning("killed %s process(es) the task left running pid=%s", killed, os.getpid())


def _exit(code: int) -> NoReturn:
    # Exiting already: a further SIGTERM must not interrupt the clean-up (SIGKILL still ends
    # the child if the supervisor runs out of patience).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Also when stopped mid-task (SystemExit) or orphaned: nothing the task started stays.
    _end_leftover_processes()
    # os._exit skips finalizers: the supervisor's database sockets, inherited through fork,
    # must not be shut down from here.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


class _Channel:
    """The pipe to the supervisor; progress timers send from other threads, hence the lock."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.received = 0  # messages read: the supervisor's holds count them (pipeline.Slot)

    def send(self, data: bytes) -> None:
        # Framed for the supervisor's FrameReader, which takes every waiting frame at once.
        data = frame(data)
        with self.lock:
            write_all(self.conn.fileno(), data)

    def receive(self) -> dict[str, Any]:
        raw = self.conn.recv_bytes()
        self.received += 1
        return payload.decode(raw)


def child_main(
    conn: Connection, parent_pid: int, output: OutputPipes, slot: Slot, nonce: bytes
) -> NoReturn:
    """Serve the supervisor until told to stop or until the pipe closes."""
    _reset_signals()
    _die_with_parent(parent_pid)
    # Processes a task starts stay below this one even if they double-fork or setsid().
    containment.become_subreaper()
    streams = ChildOutput(output.stdout, output.stderr, output.log, nonce)
    serving = _Serving(_Channel(conn), slot, streams)
    try:
        serving.run()
    except SystemExit as stop:
        _exit(stop.code if isinstance(stop.code, int) else 1)
    except BaseException:
        logger.exception("child process failed pid=%s", os.getpid())
        _exit(70)


class _Serving:
    """The tasks this child holds, run in the order sent; messages read between tasks."""

    def __init__(self, channel: _Channel, slot: Slot, streams: ChildOutput) -> None:
        self.channel = channel
        self.slot = slot
        self.streams = streams
        self.held: deque[tuple[int, TaskRecord]] = deque()
        self.waiting = False  # the supervisor holds this child until it reads more

    def run(self) -> NoReturn:
        while True:
            if not self.held or self.waiting:
                self.waiting = False
                self._receive()  # blocks
                continue
            # Every message sent so far is read before a task begins: a drop or a stop
            # must not be overtaken by the task it concerns.
            while self.channel.conn.poll():
                self._receive()
            if not self.held:
                continue
            seq, record = self.held[0]
            if not self.slot.begin(seq, self.channel.received):
                self.waiting = True
                continue
            self.held.popleft()
            self._run(seq, record)

    def _receive(self) -> None:
        try:
            message = self.channel.receive()
        except (EOFError, OSError):
            _exit(0)
        kind = message["type"]
        if kind == "run":
            for sent in message["tasks"]:
                self.held.append((int(sent["seq"]), payload.record_from_json(sent["record"])))
        elif kind == "drop":
            # The supervisor settled them when it asked: nothing to answer.
            wanted = set(message["seqs"])
            self.held = deque((seq, r) for seq, r in self.held if seq not in wanted)
        elif kind == "finished":
            with self.streams.to_console():
                for data, changes in zip(message["records"], message["changes"], strict=True):
                    announce_finished(payload.record_from_json(data, changes))
        elif kind == "stop":
            _exit(0)

    def _run(self, seq: int, record: TaskRecord) -> None:
        task_id = str(record.id)
        channel = self.channel

        def send_progress(report: ProgressReport) -> None:
            channel.send(payload.progress_message(task_id, report))

        records = self.streams.records
        reporting = Reporting(
            send_progress=send_progress,
            capture=lambda level: capturing_records(records, level),
        )
        self.streams.begin_task(seq)
        began = time.monotonic()
        outcome = run_attempt(record, reporting)
        self.slot.add_run(time.monotonic() - began)
        # The attempt ends with the processes it started: none outlive it, whatever it did.
        _end_leftover_processes()
        _restore_signal_handling()
        channel.send(payload.outcome_message(task_id, outcome))
        # Only now: a SIGTERM arriving before the outcome left must not cut it off (a task that
        # checks is_cancelled() may have stopped by itself just as its kill was decided). From
        # here, between tasks, a SIGTERM stops the child at once.
        STOP.reset()
        if _terminating.is_set():
            _exit(128 + signal.SIGTERM)
