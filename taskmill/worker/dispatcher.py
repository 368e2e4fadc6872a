"""The tasks a worker holds, from its claim to its recorded outcome, and their hand-out.

A claimed task is in hand (buffered), then dispatched to a child, then decided (a pending
write) until the supervisor records it. The Dispatcher keeps that bookkeeping and hands
buffered tasks to children with room; the supervisor drives it and alone talks to the database.
"""

import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from uuid import UUID

from django.utils import timezone

from ..models import TaskRecord
from ..outcomes import Outcome, next_transition
from ..queue.lease import Lease
from ..row_checks import read_options, row_problems
from .capture import OutputCollector
from .claim_ahead import ClaimAhead
from .endings import CANCELLED_WHILE_RUNNING, crashed, invalid_record, timed_out
from .pipeline import Depth
from .pool import ChildExited, Pool
from .recording import PendingWrite, Running

logger = logging.getLogger("taskmill.worker")


@dataclass(eq=False)
class Dispatcher:
    """Every task a worker holds: in hand, dispatched, or decided and waiting to be written."""

    pool: Pool
    claim_ahead: ClaimAhead
    depth: Depth
    log_cap: int  # bytes of output kept per attempt
    # Every task held, whatever its stage: the worker's lease is on each of them.
    running: dict[UUID, Running] = field(default_factory=dict)
    # Claimed and leased, waiting for a free child (see WorkerOptions.prefetch).
    buffer: deque[Running] = field(default_factory=deque)
    # Handed to a child, outcome not yet in: the only ones with deadlines and output, kept
    # apart so per-turn checks cost O(children), not O(tasks claimed ahead).
    dispatched: dict[UUID, Running] = field(default_factory=dict)
    # Decided (an outcome, or a release) and not yet written.
    pending: list[PendingWrite] = field(default_factory=list)
    # Set once the worker stops claiming: tasks given back are released, not buffered again.
    stopping: bool = False

    # -- Taking tasks in ------------------------------------------------------------------

    def take_claimed(self, records: list[TaskRecord]) -> None:
        """Hold freshly claimed records: in hand, or failed at once if a row can't be run."""
        for record in records:
            options, option_problems = read_options(record.options)
            running = Running(
                record=record,
                options=options,
                lease=Lease.of(record, options),
                deadline=None,
                output=OutputCollector(record.id, record.attempts, self.log_cap),
            )
            self.running[record.id] = running
            problems = row_problems(
                args=record.args,
                kwargs=record.kwargs,
                option_problems=option_problems,
                errors=record.errors,
                worker_ids=record.worker_ids,
            )
            if problems:
                # Written by hand or by a migration: the child would trip on it, or worse, the
                # supervisor's loop would. It fails alone, saying what is wrong.
                self.settle(record.id, invalid_record(problems))
                continue
            self.buffer.append(running)

    def claim_room(self, *, queue_busy: bool) -> int:
        """How many tasks to claim now: one per free child, plus tasks to hold ahead while
        the queue is busy (ClaimAhead)."""
        if self.stopping:
            return 0
        in_hand = len(self.buffer)
        free = max(0, len(self.pool.idle_children()) - in_hand)
        ahead = 0
        if queue_busy and (free or self.claim_ahead.should_refill(in_hand)):
            ahead = max(0, self.claim_ahead.target - in_hand)
        return free + ahead

    # -- Handing tasks out ----------------------------------------------------------------

    def dispatch_buffered(self) -> None:
        """Hand tasks in hand to children with room, first in first out, one per child in turn
        (the least busy first); each child gets its share in one message."""
        if not self.buffer:
            return
        rooms = self.pool.rooms(
            self.depth.of(self.claim_ahead.mean_seconds), self.depth.stalled_after
        )
        plans: list[list[tuple[Running, bool]]] = [[] for _ in rooms]
        progressed = True
        while self.buffer and progressed:
            progressed = False
            for (child, room), plan in zip(rooms, plans, strict=True):
                if not self.buffer:
                    break
                alone = self.depth.goes_alone(self.buffer[0].record.options)
                if len(plan) >= room or (plan and (alone or plan[-1][1])):
                    continue
                if alone and child.tasks:
                    continue
                plan.append((self.buffer.popleft(), alone))
                progressed = True
        now = time.monotonic()
        for (child, _), plan in zip(rooms, plans, strict=True):
            if not plan:
                continue
            for running, _ in plan:
                # From here it may have had side effects. Its timeout starts when it becomes
                # its child's head (arm_new_heads), never while it waits behind another.
                running.dispatched_at = now
                self.dispatched[running.lease.task_id] = running
            self.pool.dispatch(child, plan)
        self.arm_new_heads()

    def arm_new_heads(self) -> None:
        """Start the timeout of each task that became its child's head."""
        for task_id, since in self.pool.new_heads():
            running = self.dispatched.get(task_id)
            timeout = running.record.options.get("timeout") if running else None
            if running is not None and timeout:
                running.deadline = since + float(timeout)

    def take_back_stalled(self, now: float) -> None:
        """Take back the tasks queued behind a long task, for the other children."""
        stalled_after = self.depth.stalled_after
        if stalled_after is None or self.stopping:
            return
        # Back to the front of the buffer, in order.
        for task_id in reversed(self.pool.take_back_stalled(now, stalled_after)):
            self.settle_unstarted(task_id, requeue=True)

    def has_reports(self) -> bool:
        """Whether a dispatched task has output or progress not yet stored."""
        return any(
            r.progress is not None or r.output.has_unwritten for r in self.dispatched.values()
        )

    def next_deadline(self) -> float:
        """The earliest timeout of a dispatched task (infinity if none has one)."""
        return min(
            (r.deadline for r in self.dispatched.values() if r.deadline is not None),
            default=math.inf,
        )

    def find_buffered(self, task_id: UUID) -> Running | None:
        return next((r for r in self.buffer if r.lease.task_id == task_id), None)

    # -- Deciding -------------------------------------------------------------------------

    def give_back_unstarted(self) -> None:
        """On a graceful stop: release every task in hand, and those queued in children
        and not begun, for other workers to run."""
        self.stopping = True
        while self.buffer:
            self.pending.append(PendingWrite(running=self.buffer.popleft(), transition=None))
        for task_id in self.pool.drop_unstarted():
            self.settle_unstarted(task_id)

    def settle_exit(self, event: ChildExited) -> None:
        """Decide what a child's exit means for the tasks it held."""
        # Never begun: back to the front of the buffer, in order, as if never dispatched.
        for task_id in reversed(event.unstarted):
            self.settle_unstarted(task_id, requeue=True)
        if event.task_id is None:
            if event.kill_reason is None and event.exit_code:
                logger.warning(
                    "child exited between tasks pid=%s code=%s", event.child.pid, event.exit_code
                )
            return
        if event.kill_reason == "shutdown":
            self.release(event.task_id)
            return
        if event.kill_reason == "timeout":
            running = self.running.get(event.task_id)
            limit = running.record.options.get("timeout") if running else None
            outcome = timed_out(limit)
        elif event.kill_reason == "cancel":
            outcome = CANCELLED_WHILE_RUNNING
        else:
            outcome = crashed(event.exit_code)
        self.settle(event.task_id, outcome)

    def settle_unstarted(self, task_id: UUID, *, requeue: bool = False) -> None:
        """Settle a task a child held and never began: released when stopping, else (requeue)
        back to the front of the buffer; no attempt is used."""
        running = self.running.get(task_id)
        if running is None:
            return
        self.dispatched.pop(task_id, None)
        running.dispatched_at = None
        running.deadline = None
        if self.stopping or not requeue:
            self.pending.append(PendingWrite(running=running, transition=None))
        else:
            self.buffer.appendleft(running)

    def settle(self, task_id: UUID, outcome: Outcome, ran_for: float | None = None) -> None:
        """Decide a held task's next state from how its attempt ended."""
        running = self.running.get(task_id)
        if running is None:
            logger.error("outcome for a task this worker doesn't hold task_id=%s", task_id)
            return
        if self.dispatched.pop(task_id, None) is not None and ran_for is not None:
            self.claim_ahead.observe(ran_for)
        transition = next_transition(
            attempt=running.lease.attempt,
            options=running.options,
            outcome=outcome,
            now=timezone.now(),
        )
        self.pending.append(PendingWrite(running=running, transition=transition))

    def release(self, task_id: UUID) -> None:
        """Decide to hand a held task back to the queue."""
        running = self.running.get(task_id)
        if running is not None:
            self.dispatched.pop(task_id, None)
            self.pending.append(PendingWrite(running=running, transition=None))

    def is_pending(self, task_id: UUID) -> bool:
        return any(p.running.lease.task_id == task_id for p in self.pending)

    def forget(self, task_id: UUID) -> None:
        """Drop a task whose outcome or release was written."""
        self.running.pop(task_id, None)
        self.dispatched.pop(task_id, None)
