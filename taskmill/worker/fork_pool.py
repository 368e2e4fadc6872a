"""ForkPool: long-lived forked children that run the tasks they hold one after the other;
start, dispatch, recycle, kill, replace."""

import contextlib
import gc
import logging
import os
import select
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Pipe
from typing import Final
from uuid import UUID

from django.db import connections

from ..models import LogStream, TaskRecord
from ..outcomes import Outcome, OutcomeKind
from . import containment, payload
from .frames import FrameReader
from .output_reading import READ_BUDGET, close_output, output_pipe, read_output
from .pipeline import Slot, Splitter, new_nonce
from .pool import (
    Child,
    ChildExited,
    Dispatched,
    KillResult,
    OutcomeReceived,
    PoolEvent,
    ProgressReceived,
)
from .recording import Running

# The name it had before the pools had modules of their own: log filters may know it.
logger = logging.getLogger("taskmill.worker.pool")

SIGKILL_AFTER_EXIT_WAIT: Final = 5.0


@dataclass(eq=False)
class ForkPool:
    """N long-lived forked children; each runs the tasks it holds one after the other."""

    size: int
    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None  # bytes of resident memory
    supports_kill: bool = True
    children: list[Child] = field(default_factory=list)
    _finished_backlog: list[bytes] = field(default_factory=list)
    _next_seq: int = 1  # seq 0 is "nothing begun yet" in a fresh slot
    _heads_changed: bool = False

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
        pipes = {stream: output_pipe() for stream in (LogStream.STDOUT, LogStream.STDERR, "log")}
        slot = Slot()
        nonce = new_nonce()
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
                slot,
                nonce,
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
            reader=FrameReader(parent_end.fileno()),
            slot=slot,
            output_fds={read: stream for stream, (read, _) in pipes.items()},
            splitters={read: Splitter(nonce) for read, _ in pipes.values()},
            output_poll=output_poll,
        )
        logger.debug("child started index=%s pid=%s", fresh.index, pid)
        return fresh

    def _all_output_fds(self) -> list[int]:
        return [fd for c in self.children for fd in c.output_fds]

    def _is_live(self, child: Child) -> bool:
        return (
            child.conn is not None
            and child.kill_reason is None
            and not child.stopping
            and child.exit_code is None
        )

    def idle_children(self) -> list[Child]:
        return [c for c in self.children if not c.tasks and self.room(c, 1)]

    def rooms(self, depth: int, stalled_after: float | None) -> list[tuple[Child, int]]:
        """Children that may be given tasks now, the least busy first, each with its room;
        none for a child whose task has run for longer than stalled_after."""
        now = time.monotonic()
        found = [
            (c, room)
            for c in self.children
            if (room := self.room(c, depth))
            and not (stalled_after is not None and self._has_stalled(c, now, stalled_after))
        ]
        found.sort(key=lambda found: len(found[0].tasks))
        return found

    def find_child(self, task_id: UUID) -> Child | None:
        return next((c for c in self.children if c.find(task_id) is not None), None)

    def room(self, child: Child, depth: int) -> int:
        """How many more tasks child may be given now, holding at most depth."""
        if not self._is_live(child) or child.retiring:
            return 0
        last = next(reversed(child.tasks.values()), None)
        if last is not None and last.alone:
            return 0
        room = depth - len(child.tasks)
        if self.max_tasks_per_child is not None:
            # A child that reached its quota gets nothing more: it drains, then is replaced.
            room = min(room, self.max_tasks_per_child - child.tasks_run)
        return max(0, room)

    def dispatch(self, child: Child, tasks: list[tuple[Running, bool]]) -> None:
        """Hand child tasks (each with whether it goes alone) in one message, after those it
        holds."""
        batch = []
        for running, alone in tasks:
            seq = self._next_seq
            self._next_seq += 1
            if not child.tasks:
                self._heads_changed = True
            child.tasks[seq] = Dispatched(
                seq=seq, task_id=running.lease.task_id, collector=running.output, alone=alone
            )
            if running.record_text is None:
                running.record_text = payload.record_text(running.record)
            batch.append((seq, running.record_text))
        child.tasks_run += len(batch)
        logger.debug(
            "tasks dispatched pid=%s count=%s held=%s", child.pid, len(batch), len(child.tasks)
        )
        child.send(payload.run_message(batch))

    def new_heads(self) -> list[tuple[UUID, float]]:
        """Tasks that became their child's head since the last call, with the time: from
        then on they run (a timeout counts from there, never earlier)."""
        if not self._heads_changed:
            return []
        self._heads_changed = False
        now = time.monotonic()
        heads = []
        for child in self.children:
            head = child.head
            if head is not None and head.head_since is None:
                head.head_since = now
                heads.append((head.task_id, now))
        return heads

    def kill(self, child: Child, task_id: UUID, reason: str, grace: float) -> KillResult:
        """Kill the task if its child is running it; else drop it (cancel, shutdown) or leave
        it (timeout). The slot's hold keeps the child from moving on to another task while
        this decides, so a kill never hits a task it wasn't meant for."""
        target = child.find(task_id)
        if target is None or child.exit_code is not None:
            return KillResult.FINISHED
        if child.kill_reason is not None:
            return KillResult.KILLING if child.kill_seq == target.seq else KillResult.NOT_STARTED
        assert child.slot is not None  # noqa: S101 - forked children have one
        started = child.slot.hold(until_received=child.sent + 1)
        if started is None or started == target.seq:
            # (None: the child died holding its lock; the signal finds it gone or ends it.)
            child.kill_reason = reason
            child.kill_seq = target.seq
            child.kill_deadline = time.monotonic() + grace
            self._signal(child, signal.SIGTERM if grace > 0 else signal.SIGKILL)
            return KillResult.KILLING
        if started < target.seq and reason != "timeout":
            self._drop(child, [target])
            return KillResult.DROPPED
        child.send(payload.GO_MESSAGE)  # the message the hold waits for
        return KillResult.NOT_STARTED if started < target.seq else KillResult.FINISHED

    def take_back_stalled(self, now: float, after: float) -> list[UUID]:
        """Take back the tasks queued behind a task that has run for longer than `after`;
        return them, in order. They never begin in that child (see drop_unstarted)."""
        taken: list[UUID] = []
        for child in self.children:
            if len(child.tasks) < 2 or not self._is_live(child):
                continue
            if not self._has_stalled(child, now, after):
                continue
            unstarted = self._hold_and_drop_unstarted(child)
            taken += [d.task_id for d in unstarted]
            if unstarted:
                logger.info(
                    "took back %s task(s) queued behind a long task pid=%s task_id=%s",
                    len(unstarted),
                    child.pid,
                    next(iter(child.tasks.values())).task_id,
                )
        return taken

    @staticmethod
    def _has_stalled(child: Child, now: float, after: float) -> bool:
        head = child.head
        return head is not None and head.head_since is not None and now - head.head_since > after

    def drop_unstarted(self) -> list[UUID]:
        """Take back every task a child holds and hasn't begun (a graceful stop); return them.

        They never begin: each child reads its drop before it begins another task."""
        dropped: list[UUID] = []
        for child in self.children:
            if not child.tasks or not self._is_live(child):
                continue
            dropped += [d.task_id for d in self._hold_and_drop_unstarted(child)]
        return dropped

    def _hold_and_drop_unstarted(self, child: Child) -> list[Dispatched]:
        """Hold the child, then drop the tasks it holds and hasn't begun; return them (none
        if the child is gone)."""
        assert child.slot is not None  # noqa: S101 - forked children have one
        started = child.slot.hold(until_received=child.sent + 1)
        if started is None:
            return []
        unstarted = [d for d in child.tasks.values() if d.seq > started]
        self._drop(child, unstarted)
        return unstarted

    def _drop(self, child: Child, unstarted: list[Dispatched]) -> None:
        """Send the message a hold waits for: the drop of these tasks (or a plain wake-up)."""
        for dispatched in unstarted:
            self._forget(child, dispatched.seq)
        child.send(
            payload.drop_message([d.seq for d in unstarted]) if unstarted else payload.GO_MESSAGE
        )

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
            read_output(child, budget=READ_BUDGET)
        events: list[PoolEvent] = []
        for child in self.children:
            events.extend(self._read_messages(child))
        for index, child in enumerate(self.children):
            exit_code = self._exit_code(child)
            if exit_code is None:
                continue
            # What it sent before dying counts: an outcome may have come after the read above.
            events.extend(self._read_messages(child))
            events.append(self._on_exit(child, exit_code))
            self.children[index] = self._spawn(Child(index=child.index))
        self._recycle_worn_out()
        self._flush_finished_backlog()
        return events

    def _on_exit(self, child: Child, exit_code: int) -> ChildExited:
        # Everything a killed task wrote up to its end is its output.
        read_output(child)
        close_output(child)
        assert child.slot is not None  # noqa: S101 - forked children have one
        started = child.slot.started_seq
        child.slot.close()
        running = [d for d in child.tasks.values() if d.seq <= started]
        if len(running) > 1:
            logger.error("child exited with %s tasks unreported pid=%s", len(running), child.pid)
        head = running[-1] if running else None
        if child.conn is not None:
            child.conn.close()
        if child.reader is not None:
            child.reader.close()
        return ChildExited(
            child=child,
            task_id=head.task_id if head else None,
            exit_code=exit_code,
            kill_reason=(child.kill_reason if head is None or child.kill_seq == head.seq else None),
            unstarted=tuple(d.task_id for d in child.tasks.values() if d.seq > started),
        )

    def _read_messages(self, child: Child) -> Iterator[OutcomeReceived | ProgressReceived]:
        if child.reader is None:
            return
        frames = child.reader.read_frames()
        if frames:
            # The child wrote each task's output before reporting it: all of it is in the
            # pipes now, and is read while those tasks are still known (one poll for them all).
            read_output(child)
        for raw in frames:
            message = payload.decode(raw)
            task_id = UUID(message["id"])
            dispatched = child.find(task_id)
            if dispatched is None:
                logger.error("child reported an unknown task pid=%s task_id=%s", child.pid, task_id)
                continue
            if message["type"] == "progress":
                yield ProgressReceived(task_id=task_id, progress=message["progress"])
                continue
            outcome = Outcome.from_json(message["outcome"])
            # The kill decides this attempt's outcome, not the child; except that a task
            # that saw its cancel and stopped by itself says so.
            stopped_itself = child.kill_reason == "cancel" and outcome.kind == OutcomeKind.CANCELLED
            if child.kill_seq == dispatched.seq and not stopped_itself:
                continue
            self._forget(child, dispatched.seq)
            child.tasks_done += 1
            yield OutcomeReceived(
                child=child, task_id=task_id, outcome=outcome, ran_for=self._ran_for(child)
            )

    def _ran_for(self, child: Child) -> float | None:
        """The mean run time of the attempts child finished since last asked."""
        assert child.slot is not None  # noqa: S101 - forked children have one
        runs, seconds = child.slot.run_totals()
        seen_runs, seen_seconds = child.runs_seen
        if runs <= seen_runs:
            return None
        child.runs_seen = (runs, seconds)
        return (seconds - seen_seconds) / (runs - seen_runs)

    def _forget(self, child: Child, seq: int) -> Dispatched | None:
        was_head = child.head
        dispatched = child.tasks.pop(seq, None)
        if dispatched is not None and dispatched is was_head:
            self._heads_changed = True
        return dispatched

    def _exit_code(self, child: Child) -> int | None:
        return containment.reap(child.pid)

    def _recycle_worn_out(self) -> None:
        if self.max_tasks_per_child is None and self.max_memory_per_child is None:
            return
        for child in self.children:
            if self._is_over_memory(child):
                child.retiring = True
            if (
                not child.tasks
                and not child.stopping
                and child.conn is not None
                and (child.retiring or self._has_run_its_tasks(child))
            ):
                child.stopping = True
                child.send(payload.STOP_MESSAGE)

    def _has_run_its_tasks(self, child: Child) -> bool:
        return self.max_tasks_per_child is not None and child.tasks_run >= self.max_tasks_per_child

    def _is_over_memory(self, child: Child) -> bool:
        # Read once after each task, not on every poll: an idle child's memory doesn't grow.
        if (
            self.max_memory_per_child is None
            or child.retiring
            or child.memory_checked_after == child.tasks_done
        ):
            return False
        child.memory_checked_after = child.tasks_done
        resident = containment.over_memory_limit(child.pid, self.max_memory_per_child)
        if resident is None:
            return False
        logger.warning(
            "child replaced: resident memory %s is over --max-memory-per-child %s pid=%s "
            "tasks_run=%s",
            containment.format_size(resident),
            containment.format_size(self.max_memory_per_child),
            child.pid,
            child.tasks_done,
        )
        return True

    def announce_finished(self, records: list[TaskRecord]) -> None:
        self._finished_backlog.append(payload.finished_message(records))
        self._flush_finished_backlog()

    def announce_recorded(self, finished: list[tuple[Running, dict[str, object]]]) -> None:
        """Announce tasks this worker ran and recorded: each claim, with what was written."""
        self._finished_backlog.append(
            payload.recorded_message(
                [
                    (running.record_text or payload.record_text(running.record), changes)
                    for running, changes in finished
                ]
            )
        )
        self._flush_finished_backlog()

    def _flush_finished_backlog(self) -> None:
        if not self._finished_backlog:  # the common case: every poll comes here
            return
        # Any live child may send task_finished; one that is busy reads it between tasks.
        live = [c for c in self.children if self._is_live(c)]
        if not live:
            return
        target = min(live, key=lambda c: len(c.tasks))
        while self._finished_backlog:
            target.send(self._finished_backlog.pop(0))

    def stop(self, grace: float) -> list[UUID]:
        """Stop every child: idle ones at once, busy ones killed after grace; return the tasks
        they held and never began."""
        for child in self.children:
            if child.conn is not None and not child.tasks:
                with contextlib.suppress(OSError):
                    child.send(payload.STOP_MESSAGE)
            elif child.exit_code is None and child.kill_reason is None:
                child.kill_reason = "shutdown"
                child.kill_deadline = time.monotonic() + grace
                self._signal(child, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        deadline = time.monotonic() + grace + SIGKILL_AFTER_EXIT_WAIT
        unstarted: list[UUID] = []
        for child in self.children:
            self._reap_blocking(child, deadline)
            read_output(child)
            close_output(child)
            if child.reader is not None:
                child.reader.close()
            if child.slot is not None:
                started = child.slot.started_seq
                unstarted += [d.task_id for d in child.tasks.values() if d.seq > started]
        return unstarted

    def _reap_blocking(self, child: Child, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._exit_code(child) is not None:
                return
            time.sleep(0.01)
        self._signal(child, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child.pid, 0)
