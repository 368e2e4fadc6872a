"""Child processes that run tasks: start, dispatch, recycle, kill, replace.

Two pools share one interface: ForkPool (the default: long-lived forked children) and
SoloPool (runs tasks in the worker's own process, for debuggers and test suites).
"""

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Pipe
from typing import Final, Protocol
from uuid import UUID

from django.db import connections

from ..models import TaskRecord
from ..outcomes import Outcome
from . import payload
from .runner import announce_finished, run_attempt

logger = logging.getLogger(__name__)

SIGKILL_AFTER_EXIT_WAIT: Final = 5.0


@dataclass(eq=False, slots=True)
class Child:
    """A slot of the pool: one process (or, in SoloPool, the worker itself)."""

    index: int
    pid: int = 0
    conn: Connection | None = None
    task_id: UUID | None = None
    tasks_run: int = 0
    kill_reason: str | None = None  # "timeout", "cancel", "shutdown" once a kill began
    kill_deadline: float | None = None  # when SIGTERM turns into SIGKILL
    exit_code: int | None = None
    stopping: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeReceived:
    child: Child
    task_id: UUID
    outcome: Outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildExited:
    child: Child
    task_id: UUID | None
    exit_code: int
    kill_reason: str | None


type PoolEvent = OutcomeReceived | ChildExited


class Pool(Protocol):
    supports_kill: bool

    def start(self) -> None: ...
    def idle_children(self) -> list[Child]: ...
    def find_child(self, task_id: UUID) -> Child | None: ...
    def dispatch(self, child: Child, record: TaskRecord) -> None: ...
    def kill(self, child: Child, reason: str, grace: float) -> None: ...
    def poll_events(self) -> list[PoolEvent]: ...
    def announce_finished(self, record: TaskRecord) -> None: ...
    def enforce_kills(self, now: float) -> None: ...
    def wait_handles(self) -> list[Connection]: ...
    def stop(self, grace: float) -> None: ...


@dataclass(eq=False)
class ForkPool:
    """N long-lived forked children; each runs one task at a time."""

    size: int
    max_tasks_per_child: int | None = None
    supports_kill: bool = True
    children: list[Child] = field(default_factory=list)
    _finished_backlog: list[bytes] = field(default_factory=list)

    def start(self) -> None:
        self.children = [self._spawn(Child(index=i)) for i in range(self.size)]

    def _spawn(self, child: Child) -> Child:
        from .child import child_main

        parent_end, child_end = Pipe(duplex=True)
        # Forked children must not share the supervisor's database connections.
        connections.close_all()
        parent_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child; covered by integration tests
            parent_end.close()
            child_main(child_end, parent_pid)
        child_end.close()
        fresh = Child(index=child.index, pid=pid, conn=parent_end)
        logger.debug("child started index=%s pid=%s", fresh.index, pid)
        return fresh

    def idle_children(self) -> list[Child]:
        return [
            c
            for c in self.children
            if c.task_id is None
            and c.kill_reason is None
            and not c.stopping
            and c.exit_code is None
        ]

    def find_child(self, task_id: UUID) -> Child | None:
        return next((c for c in self.children if c.task_id == task_id), None)

    def dispatch(self, child: Child, record: TaskRecord) -> None:
        assert child.conn is not None  # noqa: S101 - live children always have a pipe
        child.task_id = record.id
        child.tasks_run += 1
        child.conn.send_bytes(payload.run_message(record))

    def kill(self, child: Child, reason: str, grace: float) -> None:
        if child.kill_reason is not None or child.exit_code is not None:
            return
        child.kill_reason = reason
        child.kill_deadline = time.monotonic() + grace
        self._signal(child, signal.SIGTERM if grace > 0 else signal.SIGKILL)

    def _signal(self, child: Child, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signum)

    def enforce_kills(self, now: float) -> None:
        for child in self.children:
            if child.kill_deadline is not None and now >= child.kill_deadline:
                child.kill_deadline = None
                self._signal(child, signal.SIGKILL)

    def wait_handles(self) -> list[Connection]:
        return [c.conn for c in self.children if c.conn is not None]

    def poll_events(self) -> list[PoolEvent]:
        events: list[PoolEvent] = list(self._read_outcomes())
        for index, child in enumerate(self.children):
            exit_code = self._exit_code(child)
            if exit_code is None:
                continue
            events.append(
                ChildExited(
                    child=child,
                    task_id=child.task_id,
                    exit_code=exit_code,
                    kill_reason=child.kill_reason,
                )
            )
            if child.conn is not None:
                child.conn.close()
            self.children[index] = self._spawn(Child(index=child.index))
        self._recycle_worn_out()
        self._flush_finished_backlog()
        return events

    def _read_outcomes(self) -> Iterator[OutcomeReceived]:
        for child in self.children:
            while child.conn is not None and child.task_id is not None and child.conn.poll():
                try:
                    message = payload.decode(child.conn.recv_bytes())
                except (EOFError, OSError):
                    break
                task_id = UUID(message["id"])
                if task_id != child.task_id:
                    logger.error(
                        "child reported an unknown task pid=%s task_id=%s", child.pid, task_id
                    )
                    continue
                if child.kill_reason is not None:
                    continue  # the kill decides this attempt's outcome, not the child
                child.task_id = None
                yield OutcomeReceived(
                    child=child, task_id=task_id, outcome=Outcome.from_json(message["outcome"])
                )

    def _exit_code(self, child: Child) -> int | None:
        try:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:
            return -1
        if pid == 0:
            return None
        return os.waitstatus_to_exitcode(status)

    def _recycle_worn_out(self) -> None:
        if self.max_tasks_per_child is None:
            return
        for child in self.children:
            if (
                child.task_id is None
                and not child.stopping
                and child.conn is not None
                and child.tasks_run >= self.max_tasks_per_child
            ):
                child.stopping = True
                child.conn.send_bytes(payload.STOP_MESSAGE)

    def announce_finished(self, record: TaskRecord) -> None:
        self._finished_backlog.append(payload.finished_message(record))
        self._flush_finished_backlog()

    def _flush_finished_backlog(self) -> None:
        # Any live child may send task_finished; one that is busy reads it after its task.
        live = [
            c
            for c in self.children
            if c.conn is not None
            and c.exit_code is None
            and not c.stopping
            and c.kill_reason is None
        ]
        if not live:
            return
        live.sort(key=lambda c: c.task_id is not None)
        while self._finished_backlog:
            message = self._finished_backlog.pop(0)
            target = live[0]
            assert target.conn is not None  # noqa: S101 - filtered above
            target.conn.send_bytes(message)

    def stop(self, grace: float) -> None:
        """Stop every child: idle ones at once, busy ones killed after grace."""
        for child in self.children:
            if child.conn is not None and child.task_id is None:
                with contextlib.suppress(OSError):
                    child.conn.send_bytes(payload.STOP_MESSAGE)
            else:
                self.kill(child, "shutdown", grace)
        deadline = time.monotonic() + grace + SIGKILL_AFTER_EXIT_WAIT
        for child in self.children:
            self._reap_blocking(child, deadline)

    def _reap_blocking(self, child: Child, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._exit_code(child) is not None:
                return
            time.sleep(0.01)
        self._signal(child, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child.pid, 0)


@dataclass(eq=False)
class SoloPool:
    """Runs each task in the worker's own process: no timeouts, no killing, one at a time."""

    supports_kill: bool = False
    child: Child = field(default_factory=lambda: Child(index=0, pid=os.getpid()))
    _events: list[PoolEvent] = field(default_factory=list)

    def start(self) -> None:
        pass

    def idle_children(self) -> list[Child]:
        return [self.child] if self.child.task_id is None else []

    def find_child(self, task_id: UUID) -> Child | None:
        return self.child if self.child.task_id == task_id else None

    def dispatch(self, child: Child, record: TaskRecord) -> None:
        child.task_id = record.id
        child.tasks_run += 1
        outcome = run_attempt(record)
        child.task_id = None
        self._events.append(OutcomeReceived(child=child, task_id=record.id, outcome=outcome))

    def kill(self, child: Child, reason: str, grace: float) -> None:
        logger.warning("the solo pool can't kill a running task reason=%s", reason)

    def poll_events(self) -> list[PoolEvent]:
        events, self._events = self._events, []
        return events

    def announce_finished(self, record: TaskRecord) -> None:
        announce_finished(record)

    def enforce_kills(self, now: float) -> None:
        pass

    def wait_handles(self) -> list[Connection]:
        return []

    def stop(self, grace: float) -> None:
        pass
