"""The worker's supervisor: claims tasks into free slots, hands them to the pool, records their
outcomes, heartbeats, rescues, and shuts down gracefully. It never runs user code.

run() is a loop around run_once() (named steps) and _wait_for_work().
"""

import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final
from uuid import UUID

from django.db import DatabaseError, InterfaceError

from ..conf import get_settings
from ..exceptions import QueueBusy, QueueError
from ..models import Worker
from ..queue import get_queue
from ..queue.base import Queue
from ..queue.errors import translate
from ..queue.lease import ClaimRequest
from ..schedules import declared_specs
from .claim_ahead import ClaimAhead
from .claim_schedule import MIN_POLL, ClaimSchedule
from .dispatcher import Dispatcher
from .endings import CANCELLED_BEFORE_START
from .fork_pool import ForkPool
from .maintenance import Maintenance
from .options import WorkerOptions, new_worker_id
from .pipeline import Depth
from .pool import ChildExited, KillResult, OutcomeReceived, Pool, ProgressReceived
from .recording import WRITE_BATCH, WRITE_DELAY, Recorder, Running
from .sleeper import Sleeper, Wake
from .solo_pool import SoloPool
from .startup import retry_at_start

logger = logging.getLogger("taskmill.worker")

RECONNECT_MIN: Final = 0.5
RECONNECT_MAX: Final = 10.0
CANCEL_CHECK_INTERVAL: Final = 0.5
# How often a running task's output and progress are stored while it runs.
REPORT_INTERVAL: Final = 1.0
DEAD_WORKER_ROWS_AFTER: Final = timedelta(hours=1)
# A burst run (a script, a test) stops on a database error that doesn't go away; a long-running
# worker retries for ever, since outages end.
BURST_ERROR_LIMIT: Final = 5


@dataclass(eq=False)
class Supervisor:
    options: WorkerOptions
    worker_id: str = field(default_factory=new_worker_id)
    stop_requested: bool = False
    force_stop: bool = False
    attempts_recorded: int = 0
    consecutive_errors: int = 0

    def __post_init__(self) -> None:
        self.settings = get_settings()
        self.write_due_at: float | None = None  # when the oldest pending write must be made
        self.queue_busy = False
        self.queue: Queue = get_queue(self.options.database_alias)
        self.recorder = Recorder(self.queue)
        self.pool: Pool = (
            SoloPool()
            if self.options.solo
            else ForkPool(
                size=self.options.concurrency,
                max_tasks_per_child=self.options.max_tasks_per_child,
                max_memory_per_child=self.options.max_memory_per_child,
            )
        )
        # The tasks this worker holds, from claim to recorded outcome.
        self.tasks = Dispatcher(
            pool=self.pool,
            claim_ahead=ClaimAhead(
                concurrency=self.options.concurrency, fixed=self.options.prefetch
            ),
            depth=Depth(fixed=self.options.pipeline_depth),
            log_cap=self.settings.LOG_CAP_BYTES,
        )
        self.sleeper = Sleeper(self.queue)
        self.claims = ClaimSchedule(poll_interval=self.settings.POLL_INTERVAL)
        self.next_heartbeat_at = 0.0
        self.next_rescue_at = 0.0
        self.next_cancel_check_at = 0.0
        self.next_report_at = 0.0
        self.next_waiter_attempt_at = 0.0
        self.stop_deadline: float | None = None
        self.reconnect_delay = RECONNECT_MIN
        # After a database error: a claim may have committed without this worker learning
        # which tasks it took (see Queue.release_unknown_claims).
        self.may_hold_unknown_claims = False
        self.drained = False
        self.bounded_session: object = None  # the connection whose stalls the server ends
        # Scheduler and pruner, when this worker leads; a burst run only drains the queue.
        self.maintenance = None if self.options.burst else Maintenance.for_worker(self)

    # -- Lifecycle --------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped (or, with burst, until nothing is due); return the exit code."""
        self._start()
        try:
            while not self._should_exit():
                self.run_once(time.monotonic())
                self._wait_for_work()
        finally:
            self._shutdown()
        return 0

    def _start(self) -> None:
        if self.options.solo:
            logger.info(
                "solo pool: tasks run in the worker process; timeouts and "
                "cancelling running tasks are unavailable"
            )
        retry_at_start(self._prepare_database, self.queue.database_alias)
        self.pool.start()
        logger.info(
            "worker started worker_id=%s queues=%s concurrency=%s pool=%s",
            self.worker_id,
            ",".join(self.options.queue_names),
            self.options.concurrency,
            "solo" if self.options.solo else "fork",
        )

    def _prepare_database(self) -> None:
        self.queue.prepare_worker_connection()
        self.queue.register_worker(
            Worker(
                id=self.worker_id,
                backend=self.options.backend_alias,
                host=socket.gethostname(),
                pid=os.getpid(),
                queues=list(self.options.queue_names),
                concurrency=self.options.concurrency,
            )
        )
        if self.maintenance is not None:
            self.maintenance.start(declared_specs(self.settings.SCHEDULE))

    def request_stop(self) -> None:
        """Stop claiming and let running tasks finish; a second call stops at once.

        Called from signal handlers: it only sets state.
        """
        if self.stop_requested:
            self.force_stop = True
        self.stop_requested = True
        self.tasks.stopping = True

    def _should_exit(self) -> bool:
        if self.force_stop:
            return True
        if self.stop_requested or (self.options.burst and self.drained):
            return not self.tasks.running and not self.tasks.pending
        return False

    # -- One iteration ----------------------------------------------------------------------

    def run_once(self, now: float) -> None:
        """Do every step that is due; survive database errors."""
        self._begin_stop_if_requested(now)
        self._open_waiter_if_due(now)
        try:
            self._bound_stalled_transactions()
            self._release_unknown_claims_if_needed()
            self._reap_finished()
            self._enforce_deadlines(now)
            self._write_pending_if_due()
            self._claim_into_free_slots(now)
            self._store_reports_if_due(now)
            self._heartbeat_if_due(now)
            self._check_cancel_requests_if_due(now)
            self._rescue_if_due(now)
            self._maintain_if_due(now)
            self._announce_finished_aside()
            self.reconnect_delay = RECONNECT_MIN
            self.consecutive_errors = 0
        except (DatabaseError, InterfaceError) as error:
            self._on_database_error(error)
        except QueueError as error:
            self._on_database_error(error)

    def _bound_stalled_transactions(self) -> None:
        # A supervisor stalled inside one of its transactions (SIGSTOP, swap, a frozen VM)
        # must not hold locks that other workers' loops wait on (the scheduler's, the
        # pruner's) for longer than a lease: after that, the server ends its session and the
        # locks go. Set per session, so again after each reconnect. Not with the solo pool,
        # whose tasks' transactions may idle as long as they like, nor inside a caller's.
        connection = self.queue.connection
        if self.options.solo or connection.in_atomic_block:
            return
        connection.ensure_connection()
        if connection.connection is not self.bounded_session:
            self.queue.end_stalled_transactions_after(self.settings.LEASE_SECONDS)
            self.bounded_session = connection.connection

    def _open_waiter_if_due(self, now: float) -> None:
        # Outside run_once's error handling on purpose: a wake-up channel that can't be opened
        # (e.g. max_connections reached) must not stop claiming and heartbeats; polling works.
        if self.sleeper.waiter is not None or now < self.next_waiter_attempt_at:
            return
        try:
            self.sleeper.open_waiter_if_needed()
        except (DatabaseError, InterfaceError, QueueError) as error:
            self.next_waiter_attempt_at = now + RECONNECT_MAX
            logger.warning(
                "no wake-up channel, polling; retrying in %.0f s: %s", RECONNECT_MAX, error
            )

    def _begin_stop_if_requested(self, now: float) -> None:
        if self.stop_requested and self.stop_deadline is None:
            # Tasks claimed ahead go back at once, for other workers to run; so do those
            # queued in children and not begun.
            self.tasks.give_back_unstarted()
            self.stop_deadline = now + self.options.grace
            logger.info(
                "stopping: no new tasks; %s running get %.1f s to finish",
                len(self.tasks.running),
                self.options.grace,
            )

    def _release_unknown_claims_if_needed(self) -> None:
        if not self.may_hold_unknown_claims:
            return
        released = self.queue.release_unknown_claims(
            self.worker_id, known=self.tasks.running.keys()
        )
        self.may_hold_unknown_claims = False
        for task_id in released:
            logger.warning("task released task_id=%s: its claim's answer was lost", task_id)

    def _reap_finished(self) -> None:
        for event in self.pool.poll_events():
            if isinstance(event, ProgressReceived):
                running = self.tasks.running.get(event.task_id)
                if running is not None:
                    running.progress = event.progress
            elif isinstance(event, OutcomeReceived):
                self.tasks.settle(event.task_id, event.outcome, ran_for=event.ran_for)
            elif isinstance(event, ChildExited):
                self.tasks.settle_exit(event)
        # A child freed here takes the next task in hand at once, before the database
        # round trip that records what it just finished.
        self.tasks.dispatch_buffered()
        self.tasks.arm_new_heads()
        # Every event became a pending write first, so a database error loses none of them.
        self._write_pending_if_due()

    def _write_pending_if_due(self) -> None:
        """Write pending outcomes now, or leave them for a bigger batch while tasks in hand
        keep the children busy (WRITE_BATCH, WRITE_DELAY)."""
        if not self.tasks.pending:
            self.write_due_at = None
            return
        now = time.monotonic()
        if self.write_due_at is None:
            self.write_due_at = now + WRITE_DELAY
        if (
            not self.tasks.buffer
            or self.stop_requested
            or len(self.tasks.pending) >= WRITE_BATCH
            or now >= self.write_due_at
        ):
            self._write_pending()

    def _write_pending(self) -> None:
        """Record every decided outcome (worker/recording.py), then forget those tasks."""
        pending = self.tasks.pending
        if not pending:
            self.write_due_at = None
            return
        batch = list(pending)
        finished: list[tuple[Running, dict[str, object]]] = []
        for write, changes in self.recorder.write(batch):
            running = write.running
            if write.transition is not None and changes is not None:
                self.attempts_recorded += 1
                if write.transition.is_final:
                    finished.append((running, changes))
                elif write.transition.run_after is not None:
                    # Nothing else tells this worker, idle, of its own retry where the
                    # database pushes no due times.
                    self.claims.expect_due(write.transition.run_after)
            self.tasks.forget(running.lease.task_id)
        del pending[: len(batch)]
        self.write_due_at = None
        if finished:
            self.pool.announce_recorded(finished)

    def _enforce_deadlines(self, now: float) -> None:
        if self.stop_deadline is not None and now >= self.stop_deadline:
            self._kill_all("shutdown", grace=0)
        if self.pool.supports_kill:
            for running in list(self.tasks.dispatched.values()):
                if running.deadline is not None and now >= running.deadline:
                    self._time_out(running, now)
        self.tasks.take_back_stalled(now)
        self.pool.enforce_kills(now)

    def _time_out(self, running: Running, now: float) -> None:
        result = self._kill_task(running.lease.task_id, "timeout")
        if result == KillResult.NOT_STARTED:
            # Its child hasn't begun it yet (still announcing, say): its time starts later.
            timeout = running.record.options.get("timeout")
            running.deadline = now + float(timeout) if timeout else None
        elif result != KillResult.KILLING:
            running.deadline = None  # its outcome is on the way

    def _kill_task(self, task_id: UUID, reason: str, grace: float | None = None) -> KillResult:
        child = self.pool.find_child(task_id)
        if child is None:
            return KillResult.FINISHED
        result = self.pool.kill(
            child, task_id, reason, self.settings.CANCEL_GRACE_SECONDS if grace is None else grace
        )
        if result == KillResult.DROPPED:
            if reason == "cancel":
                self.tasks.settle(task_id, CANCELLED_BEFORE_START)
            else:
                self.tasks.settle_unstarted(task_id)
        return result

    def _kill_all(self, reason: str, grace: float) -> None:
        for task_id in list(self.tasks.running):
            self._kill_task(task_id, reason, grace)

    def _claim_into_free_slots(self, now: float) -> None:
        self.tasks.dispatch_buffered()
        if not self.claims.is_due(now):
            return
        room = self.tasks.claim_room(queue_busy=self.queue_busy)
        if not room:
            return
        records = self.queue.claim(
            ClaimRequest(
                worker_id=self.worker_id,
                queue_names=self.options.queue_names,
                limit=room,
                lease_seconds=self.settings.LEASE_SECONDS,
            )
        )
        self.claims.after_claim(now, found_work=bool(records), news_pushed=self.sleeper.pushes_news)
        self.drained = not records and not self.tasks.running
        # A full claim says more tasks are waiting: worth claiming ahead of free slots.
        self.queue_busy = len(records) == room
        self.tasks.take_claimed(records)
        self.tasks.dispatch_buffered()
        self._reap_finished()

    def _store_reports_if_due(self, now: float) -> None:
        if now < self.next_report_at or not self.tasks.has_reports():
            return
        self.next_report_at = now + REPORT_INTERVAL
        self.recorder.store_reports(list(self.tasks.dispatched.values()))

    def _heartbeat_if_due(self, now: float) -> None:
        if now < self.next_heartbeat_at:
            return
        self.queue.heartbeat(self.worker_id, self.settings.LEASE_SECONDS)
        self.next_heartbeat_at = now + self.settings.HEARTBEAT_SECONDS

    def _check_cancel_requests_if_due(self, now: float) -> None:
        if not self.tasks.running or now < self.next_cancel_check_at or not self.pool.supports_kill:
            return
        for task_id in self.queue.cancel_requests(self.worker_id):
            buffered = self.tasks.find_buffered(task_id)
            if buffered is None:
                self._kill_task(task_id, "cancel")
                continue
            self.tasks.buffer.remove(buffered)
            self.tasks.settle(task_id, CANCELLED_BEFORE_START)
        self.next_cancel_check_at = now + CANCEL_CHECK_INTERVAL

    def _rescue_if_due(self, now: float) -> None:
        if now < self.next_rescue_at:
            return
        lease = self.settings.LEASE_SECONDS
        # Jittered, so many workers started together don't all rescue at the same moment.
        self.next_rescue_at = now + lease / 2 * random.uniform(0.75, 1.25)  # noqa: S311
        self.queue.rescue_expired()
        self.queue.fail_unknown_states()
        self.queue.forget_dead_workers(DEAD_WORKER_ROWS_AFTER)

    def _announce_finished_aside(self) -> None:
        # Rescued for good, or cancelled because a dependency failed: no child ran these to
        # their end, so their task_finished goes out here, through a child like the others.
        finished = self.queue.take_finished_aside()
        if finished:
            self.pool.announce_finished(finished)

    def _maintain_if_due(self, now: float) -> None:
        if self.maintenance is not None and not self.stop_requested:
            self.maintenance.run_once(now)

    # -- Waiting, errors, shutdown ------------------------------------------------------------

    def _wait_for_work(self) -> None:
        if self.queue.take_made_ready():  # news its own waiter may not bring
            self.claims.claim_now()
        if self.options.solo:
            next_claim_at = self.claims.next_at
            if next_claim_at > time.monotonic() and not self._should_exit():
                time.sleep(max(0.0, min(next_claim_at - time.monotonic(), MIN_POLL * 4)))
            return
        self._on_wake(self.sleeper.sleep(self._time_to_next_step(), self.pool.wait_handles()))

    def _on_wake(self, wake: Wake) -> None:
        # Tasks announced as due later are claimed when due, where this worker serves them.
        for queue_name, unix_time in self.sleeper.take_later():
            if queue_name in self.options.queue_names:
                self.claims.expect_due_at(unix_time)
        if wake == Wake.NEWS:
            self.claims.claim_now()
            self.next_cancel_check_at = 0.0

    def _time_to_next_step(self) -> float:
        now = time.monotonic()
        until = min(self.next_heartbeat_at, self.next_rescue_at)
        if self.maintenance is not None:
            until = min(until, self.maintenance.next_step_at)
        # With every slot busy and enough in hand, the next claim waits for a child to report,
        # not for a timer.
        if self.tasks.claim_room(queue_busy=self.queue_busy):
            until = min(until, self.claims.next_at)
        if self.tasks.running:
            until = min(until, now + CANCEL_CHECK_INTERVAL)
            if self.tasks.has_reports():
                until = min(until, self.next_report_at)
            until = min(until, self.tasks.next_deadline())
        if self.stop_deadline is not None:
            until = min(until, self.stop_deadline)
        if self.write_due_at is not None:
            until = min(until, self.write_due_at)
        return max(0.0, until - now)

    def _on_database_error(self, error: DatabaseError | InterfaceError | QueueError) -> None:
        translated = error if isinstance(error, QueueError) else translate(error)
        self.consecutive_errors += 1
        self.may_hold_unknown_claims = True
        if self.queue.connection.in_atomic_block:
            # In-process inside the caller's transaction (run_until_empty in a test): it
            # can't be reconnected from here, so the caller gets the error.
            raise error
        if self.options.burst and self.consecutive_errors >= BURST_ERROR_LIMIT:
            logger.error("giving up after %s database errors in a row", self.consecutive_errors)
            raise error
        if isinstance(translated, QueueBusy):
            logger.info("database busy, retrying: %s", translated)
            time.sleep(random.uniform(0.01, 0.05))  # noqa: S311
            return
        logger.error(
            "database error, reconnecting in %.1f s: %s",
            self.reconnect_delay,
            error,
            exc_info=translated is None,
        )
        self.queue.close_connections()
        self.sleeper.close_waiter()
        self.sleeper.sleep_until_signal(self.reconnect_delay)
        self.reconnect_delay = min(self.reconnect_delay * 2, RECONNECT_MAX)

    def _shutdown(self) -> None:
        if self.force_stop and self.tasks.running:
            logger.warning("stopping now: killing %s running task(s)", len(self.tasks.running))
        try:
            self._reap_finished()  # outcomes that arrived while stopping are kept
        except (DatabaseError, InterfaceError) as error:
            logger.error("could not record outcomes at shutdown: %s", error)
        # Kill first, then release: a task handed back must not still be running anywhere.
        for task_id in self.pool.stop(grace=0.0):
            running = self.tasks.running.get(task_id)
            if running is not None:
                running.dispatched_at = None  # never begun: handed back with no note
        for task_id in list(self.tasks.running):
            if not self.tasks.is_pending(task_id):
                self.tasks.release(task_id)
        try:
            self._write_pending()
            self._release_unknown_claims_if_needed()
            if self.maintenance is not None:
                self.maintenance.stop()
            self.queue.deregister_worker(self.worker_id)
        except (DatabaseError, InterfaceError) as error:
            logger.error("could not release tasks at shutdown; the rescuer will: %s", error)
        self.sleeper.close_waiter()
        logger.info("worker stopped worker_id=%s", self.worker_id)

    def install_signal_handlers(self) -> Callable[[], None]:
        """Route SIGTERM/SIGINT to request_stop; return a function restoring the old handlers."""
        return self.sleeper.install_signal_handlers(self.request_stop)
