"""Child processes that run tasks: start, dispatch, recycle, kill, replace.

Two pools share one interface: ForkPool (the default: long-lived forked children) and
SoloPool (runs tasks in the worker's own process, for debuggers and test suites).
"""

import contextlib
import fcntl
import gc
import logging
import os
import select
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Pipe
from typing import Final, Protocol
from uuid import UUID

from django.db import connections

from ..context import ProgressReport
from ..models import LogStream, TaskRecord
from ..outcomes import Outcome, OutcomeKind
from . import containment, payload
from .capture import OutputCollector, capturing_in_process
from .runner import Reporting, announce_finished, run_attempt

logger = logging.getLogger(__name__)

SIGKILL_AFTER_EXIT_WAIT: Final = 5.0
# Big pipes let a burst of output flow without waking the supervisor for every 64 KiB.
PIPE_SIZE: Final = 1024 * 1024
F_SETPIPE_SZ: Final = 1031  # Linux; fcntl names it only from Python 3.10 on some builds
READ_SIZE: Final = 1024 * 1024
# Per child and per poll: one child's flood of output mustn't hold up everything else.
READ_BUDGET: Final = 8 * READ_SIZE


@dataclass(eq=False, slots=True)
class Child:
    """A slot of the pool: one process (or, in SoloPool, the worker itself)."""

    index: int
    pid: int = 0
    conn: Connection | None = None
    task_id: UUID | None = None
    tasks_run: int = 0
    memory_checked_after: int = 0  # tasks_run when its memory was last read
    kill_reason: str | None = None  # "timeout", "cancel", "shutdown" once a kill began
    kill_deadline: float | None = None  # when SIGTERM turns into SIGKILL
    exit_code: int | None = None
    stopping: bool = False
    output_fds: dict[int, str] = field(default_factory=dict)  # read end -> stream
    # The output_fds, to read only those with data. Quoted: select.poll is a function at run
    # time, only a class to the type checker.
    output_poll: "select.poll | None" = None
    collector: OutputCollector | None = None  # the running attempt's output


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


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressReceived:
    task_id: UUID
    progress: ProgressReport


type PoolEvent = OutcomeReceived | ChildExited | ProgressReceived


class Pool(Protocol):
    supports_kill: bool

    def start(self) -> None: ...
    def idle_children(self) -> list[Child]: ...
    def find_child(self, task_id: UUID) -> Child | None: ...
    def dispatch(self, child: Child, record: TaskRecord, collector: OutputCollector) -> None: ...
    def kill(self, child: Child, reason: str, grace: float) -> None: ...
    def poll_events(self) -> list[PoolEvent]: ...
    def announce_finished(self, records: list[TaskRecord]) -> None: ...
    def enforce_kills(self, now: float) -> None: ...
    def wait_handles(self) -> list[Connection | int]: ...
    def stop(self, grace: float) -> None: ...


@dataclass(eq=False)
class ForkPool:
    """N long-lived forked children; each runs one task at a time."""

    size: int
    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None  # bytes of resident memory
    supports_kill: bool = True
    children: list[Child] = field(default_factory=list)
    _finished_backlog: list[bytes] = field(default_factory=list)

    def start(self) -> None:
        if self.max_memory_per_child is not None and not containment.can_read_memory():
            logger.warning(
                "--max-memory-per-child is not enforced: this system has no /proc to read a "
                "child's resident memory from"
            )
        self.children = [self._spawn(Child(index=i)) for i in range(self.size)]

    def _spawn(self, child: Child) -> Child:
        from .child import OutputPipes, child_main

        parent_end, child_end = Pipe(duplex=True)
        pipes = {stream: _output_pipe() for stream in (LogStream.STDOUT, LogStream.STDERR, "log")}
        # Forked children must not share the supervisor's database connections.
        connections.close_all()
        parent_pid = os.getpid()
        # Frozen objects are never scanned by the child's collector, whose scans would write
        # to (and so copy) nearly every page the child shares with the supervisor.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child; covered by integration tests
            parent_end.close()
            for fd in [read for read, _ in pipes.values()] + self._all_output_fds():
                os.close(fd)
            child_main(
                child_end,
                parent_pid,
                OutputPipes(
                    stdout=pipes[LogStream.STDOUT][1],
                    stderr=pipes[LogStream.STDERR][1],
                    log=pipes["log"][1],
                ),
            )
        gc.unfreeze()  # the supervisor's own garbage stays collectable
        child_end.close()
        for _, write in pipes.values():
            os.close(write)
        output_poll = select.poll()
        for read, _ in pipes.values():
            output_poll.register(read, select.POLLIN)
        fresh = Child(
            index=child.index,
            pid=pid,
            conn=parent_end,
            output_fds={read: stream for stream, (read, _) in pipes.items()},
            output_poll=output_poll,
        )
        logger.debug("child started index=%s pid=%s", fresh.index, pid)
        return fresh

    def _all_output_fds(self) -> list[int]:
        return [fd for c in self.children for fd in c.output_fds]

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

    def dispatch(self, child: Child, record: TaskRecord, collector: OutputCollector) -> None:
        assert child.conn is not None  # noqa: S101 - live children always have a pipe
        self._read_output(child)  # anything written between tasks isn't this task's
        child.task_id = record.id
        child.collector = collector
        child.tasks_run += 1
        child.conn.send_bytes(payload.run_message(record))

    def kill(self, child: Child, reason: str, grace: float) -> None:
        if child.kill_reason is not None or child.exit_code is not None:
            return
        child.kill_reason = reason
        child.kill_deadline = time.monotonic() + grace
        self._signal(child, signal.SIGTERM if grace > 0 else signal.SIGKILL)

    def _signal(self, child: Child, signum: int) -> None:
        if signum == signal.SIGKILL:
            # Its descendants too: a task's processes must not outlive the attempt.
            containment.kill_tree(child.pid)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signum)

    def enforce_kills(self, now: float) -> None:
        for child in self.children:
            if child.kill_deadline is not None and now >= child.kill_deadline:
                child.kill_deadline = None
                self._signal(child, signal.SIGKILL)

    def wait_handles(self) -> list[Connection | int]:
        handles: list[Connection | int] = [c.conn for c in self.children if c.conn is not None]
        return handles + self._all_output_fds()

    def poll_events(self) -> list[PoolEvent]:
        for child in self.children:
            self._read_output(child, budget=READ_BUDGET)
        events: list[PoolEvent] = list(self._read_messages())
        for index, child in enumerate(self.children):
            exit_code = self._exit_code(child)
            if exit_code is None:
                continue
            # Everything a killed task wrote up to its end is its output.
            self._read_output(child)
            self._close_output(child)
            child.collector = None
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

    def _read_messages(self) -> Iterator[OutcomeReceived | ProgressReceived]:
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
                if message["type"] == "progress":
                    yield ProgressReceived(task_id=task_id, progress=message["progress"])
                    continue
                outcome = Outcome.from_json(message["outcome"])
                # The kill decides this attempt's outcome, not the child; except that a task
                # that saw its cancel and stopped by itself says so.
                stopped_itself = (
                    child.kill_reason == "cancel" and outcome.kind == OutcomeKind.CANCELLED
                )
                if child.kill_reason is not None and not stopped_itself:
                    continue
                # The child wrote its output before reporting: it is all in the pipes now.
                self._read_output(child)
                child.task_id = None
                child.collector = None
                yield OutcomeReceived(child=child, task_id=task_id, outcome=outcome)

    def _read_output(self, child: Child, budget: int | None = None) -> None:
        """Read what a child wrote into its running attempt's collector (or the console)."""
        if child.output_poll is None:
            return
        # One poll() instead of a read() per pipe: this runs several times per task, and most
        # tasks write nothing. A pipe holding data, or whose writers are gone, shows as ready.
        for fd, _ in child.output_poll.poll(0):
            stream = child.output_fds.get(fd)
            if stream is None:
                continue
            taken = 0
            while budget is None or taken < budget:
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    break
                if not data:  # every write end closed: the child is gone
                    del child.output_fds[fd]
                    child.output_poll.unregister(fd)
                    os.close(fd)
                    break
                taken += len(data)
                if child.collector is not None:
                    child.collector.feed(stream, data)
                else:
                    _pass_through(stream, data)

    def _close_output(self, child: Child) -> None:
        for fd in child.output_fds:
            os.close(fd)
        child.output_fds = {}
        child.output_poll = None

    def _exit_code(self, child: Child) -> int | None:
        return containment.reap(child.pid)

    def _recycle_worn_out(self) -> None:
        if self.max_tasks_per_child is None and self.max_memory_per_child is None:
            return
        for child in self.children:
            if (
                child.task_id is None
                and not child.stopping
                and child.conn is not None
                and (self._has_run_its_tasks(child) or self._is_over_memory(child))
            ):
                child.stopping = True
                child.conn.send_bytes(payload.STOP_MESSAGE)

    def _has_run_its_tasks(self, child: Child) -> bool:
        return self.max_tasks_per_child is not None and child.tasks_run >= self.max_tasks_per_child

    def _is_over_memory(self, child: Child) -> bool:
        # Read once after each task, not on every poll: an idle child's memory doesn't grow.
        if self.max_memory_per_child is None or child.memory_checked_after == child.tasks_run:
            return False
        child.memory_checked_after = child.tasks_run
        resident = containment.over_memory_limit(child.pid, self.max_memory_per_child)
        if resident is None:
            return False
        logger.warning(
            "child replaced: resident memory %s is over --max-memory-per-child %s pid=%s "
            "tasks_run=%s",
            containment.format_size(resident),
            containment.format_size(self.max_memory_per_child),
            child.pid,
            child.tasks_run,
        )
        return True

    def announce_finished(self, records: list[TaskRecord]) -> None:
        self._finished_backlog.append(payload.finished_message(records))
        self._flush_finished_backlog()

    def _flush_finished_backlog(self) -> None:
        if not self._finished_backlog:  # the common case: every poll comes here
            return
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
            self._read_output(child)
            self._close_output(child)

    def _reap_blocking(self, child: Child, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._exit_code(child) is not None:
                return
            time.sleep(0.01)
        self._signal(child, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child.pid, 0)


def _output_pipe() -> tuple[int, int]:
    read, write = os.pipe()
    os.set_blocking(read, False)
    with contextlib.suppress(OSError):  # the system's limit may be lower; the default works
        fcntl.fcntl(read, F_SETPIPE_SZ, PIPE_SIZE)
    return read, write


def _pass_through(stream: str, data: bytes) -> None:
    # Output between tasks (a child's own messages, a task's leftover subprocess) isn't any
    # task's: it goes to the worker's console rather than nowhere.
    with contextlib.suppress(OSError):
        os.write(1 if stream == LogStream.STDOUT else 2, data)


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

    def dispatch(self, child: Child, record: TaskRecord, collector: OutputCollector) -> None:
        child.task_id = record.id
        child.tasks_run += 1

        def send_progress(report: ProgressReport) -> None:
            self._events.append(ProgressReceived(task_id=record.id, progress=report))

        reporting = Reporting(
            send_progress=send_progress,
            capture=lambda level: capturing_in_process(collector, level),
        )
        outcome = run_attempt(record, reporting)
        child.task_id = None
        self._events.append(OutcomeReceived(child=child, task_id=record.id, outcome=outcome))

    def kill(self, child: Child, reason: str, grace: float) -> None:
        logger.warning("the solo pool can't kill a running task reason=%s", reason)

    def poll_events(self) -> list[PoolEvent]:
        events, self._events = self._events, []
        return events

    def announce_finished(self, records: list[TaskRecord]) -> None:
        for record in records:
            announce_finished(record)

    def enforce_kills(self, now: float) -> None:
        pass

    def wait_handles(self) -> list[Connection | int]:
        return []

    def stop(self, grace: float) -> None:
        pass
