"""SoloPool: runs each task in the worker's own process (--pool solo), for debuggers and
test suites."""

import logging
import os
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from uuid import UUID

from ..context import ProgressReport
from ..models import TaskRecord
from .capture import OutputCollector, capturing_in_process
from .pool import Child, Dispatched, KillResult, OutcomeReceived, PoolEvent, ProgressReceived
from .recording import Running, as_finished
from .runner import Reporting, announce_finished, run_attempt

# The name it had before the pools had modules of their own: log filters may know it.
logger = logging.getLogger("taskmill.worker.pool")


@dataclass(eq=False)
class SoloPool:
    """Runs each task in the worker's own process: no timeouts, no killing, one at a time."""

    supports_kill: bool = False
    child: Child = field(default_factory=lambda: Child(index=0, pid=os.getpid()))
    _events: list[PoolEvent] = field(default_factory=list)

    def start(self) -> None:
        pass

    def idle_children(self) -> list[Child]:
        return [self.child] if not self.child.tasks else []

    def find_child(self, task_id: UUID) -> Child | None:
        return self.child if self.child.find(task_id) is not None else None

    def rooms(self, depth: int, stalled_after: float | None) -> list[tuple[Child, int]]:
        return [] if self.child.tasks else [(self.child, 1)]  # one at a time, run at once

    def dispatch(self, child: Child, tasks: list[tuple[Running, bool]]) -> None:
        for running, _ in tasks:
            self._run(child, running.record, running.output)

    def _run(self, child: Child, record: TaskRecord, collector: OutputCollector) -> None:
        child.tasks[0] = Dispatched(seq=0, task_id=record.id, collector=collector)
        child.tasks_run += 1

        def send_progress(report: ProgressReport) -> None:
            self._events.append(ProgressReceived(task_id=record.id, progress=report))

        reporting = Reporting(
            send_progress=send_progress,
            capture=lambda level: capturing_in_process(collector, level),
        )
        outcome = run_attempt(record, reporting)
        child.tasks.clear()
        self._events.append(OutcomeReceived(child=child, task_id=record.id, outcome=outcome))

    def new_heads(self) -> list[tuple[UUID, float]]:
        return []  # no timeouts here: nothing to time

    def drop_unstarted(self) -> list[UUID]:
        return []  # nothing is held: each task runs as it is dispatched

    def take_back_stalled(self, now: float, after: float) -> list[UUID]:
        return []

    def kill(self, child: Child, task_id: UUID, reason: str, grace: float) -> KillResult:
        logger.warning("the solo pool can't kill a running task reason=%s", reason)
        return KillResult.FINISHED

    def poll_events(self) -> list[PoolEvent]:
        events, self._events = self._events, []
        return events

    def announce_finished(self, records: list[TaskRecord]) -> None:
        for record in records:
            announce_finished(record)

    def announce_recorded(self, finished: list[tuple[Running, dict[str, object]]]) -> None:
        self.announce_finished(
            [as_finished(running.record, changes) for running, changes in finished]
        )

    def enforce_kills(self, now: float) -> None:
        pass

    def wait_handles(self) -> list[Connection | int]:
        return []

    def stop(self, grace: float) -> list[UUID]:
        return []
