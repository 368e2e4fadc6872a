"""The leader's duties, run from the supervisor's loop: hold (or try to take) the leader lease,
enqueue due schedules, prune expired results, and vacuum the task table after much churn
(PostgreSQL). Each step does work only when it is due, so the loop stays fast; every step has
a run_once that tests drive directly.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from ..conf import TaskmillSettings
from ..queue.leader import LeaderLease
from ..queue.pruning import Selection, delete_batches
from ..queue.vacuum import open_table_vacuum
from ..scheduler import Scheduler, missed_after
from ..schedules import ScheduleSpec

if TYPE_CHECKING:
    from ..queue.postgres_vacuum import TableVacuum
    from .options import WorkerOptions

logger = logging.getLogger("taskmill.worker")

MIN_STEP: Final = 0.05
# Without anything due, the leader still looks every few seconds: a schedule enabled in the
# admin is picked up that fast.
SCHEDULE_RECHECK: Final = 5.0
PRUNE_INTERVAL: Final = 60.0
# One prune step deletes batches for at most this long, then lets the loop go on.
PRUNE_BUDGET: Final = 0.5
# Dead row versions (two per task) since the last vacuum that make the leader start one:
# about 10,000 tasks, whose dead claim-index entries add ~0.1 ms to a claim (measured: ~1 ms
# per 100,000; docs/explanation/scale.md).
VACUUM_AFTER_DEAD_ROWS: Final = 20_000
VACUUM_CHECK_INTERVAL: Final = 2.0
VACUUM_POLL: Final = 0.5
# After a vacuum the next waits at least this many times as long as it took: each one reads
# every index of the table whole, so vacuuming takes at most 1/(1 + 4) of the time however
# big the table grows.
VACUUM_PACING: Final = 4.0


class SupervisorLike(Protocol):
    options: WorkerOptions
    worker_id: str
    settings: TaskmillSettings


@dataclass(eq=False)
class Pruner:
    """Deletes finished tasks past their expiry (result_ttl), a batch at a time."""

    database_alias: str

    def run_once(self, time_budget: float = PRUNE_BUDGET) -> bool:
        """Prune for up to time_budget seconds; return True when nothing expired is left."""
        deleted, done = delete_batches(self.database_alias, Selection(), time_budget=time_budget)
        if deleted:
            logger.info(
                "pruned expired results %s",
                " ".join(f"{state}={count}" for state, count in sorted(deleted.items())),
            )
        return done


@dataclass(eq=False)
class Vacuumer:
    """Starts a VACUUM of the task table when many tasks have churned through it, instead of
    waiting for autovacuum's next round; one at a time, paced by how long the last one took."""

    vacuum: TableVacuum
    after_dead_rows: int = VACUUM_AFTER_DEAD_ROWS
    next_check_at: float = 0.0
    started_at: float | None = None
    # Dead rows the last vacuum left (still visible to some open transaction): not counted
    # again, so a long transaction elsewhere doesn't make every check start a vacuum.
    left_behind: int = 0

    def run_once(self, now: float) -> None:
        """Poll a running vacuum, or start one if enough dead rows piled up; when due."""
        if now < self.next_check_at:
            return
        if self.started_at is not None:
            self._poll(now, self.started_at)
            return
        dead = self.vacuum.dead_rows()
        self.left_behind = min(self.left_behind, dead)  # autovacuum may have cleared them
        if dead - self.left_behind < self.after_dead_rows:
            self.next_check_at = now + VACUUM_CHECK_INTERVAL
            return
        if not self.vacuum.start():  # logged; vacuuming only keeps claims fast
            self.next_check_at = now + VACUUM_CHECK_INTERVAL
            return
        self.started_at = now
        self.next_check_at = now + VACUUM_POLL
        logger.info("vacuuming the task table dead_rows=%s", dead)

    def _poll(self, now: float, started_at: float) -> None:
        if self.vacuum.is_running():
            self.next_check_at = now + VACUUM_POLL
            return
        took = now - started_at
        self.started_at = None
        self.left_behind = self.vacuum.dead_rows()
        self.next_check_at = now + max(VACUUM_CHECK_INTERVAL, took * VACUUM_PACING)
        logger.info(
            "vacuumed the task table seconds=%.1f dead_rows_left=%s", took, self.left_behind
        )

    def stop(self) -> None:
        """Cancel a vacuum still running."""
        self.vacuum.close()
        self.started_at = None


@dataclass(eq=False)
class Maintenance:
    """Leader election plus the scheduler, the pruner and the vacuumer, for one worker of one
    backend."""

    backend_alias: str
    database_alias: str
    worker_id: str
    settings: TaskmillSettings
    leader_until: float = 0.0
    next_lease_at: float = 0.0
    next_schedule_at: float = 0.0
    next_prune_at: float = 0.0
    lease: LeaderLease = field(init=False)
    scheduler: Scheduler = field(init=False)
    pruner: Pruner = field(init=False)
    vacuumer: Vacuumer | None = field(init=False)

    def __post_init__(self) -> None:
        self.lease = LeaderLease(
            database_alias=self.database_alias,
            name=f"leader:{self.backend_alias}",
            worker_id=self.worker_id,
            seconds=self.settings.LEASE_SECONDS,
        )
        self.scheduler = Scheduler(
            backend_alias=self.backend_alias,
            database_alias=self.database_alias,
            missed_after=missed_after(self.settings),
        )
        self.pruner = Pruner(self.database_alias)
        vacuum = open_table_vacuum(self.database_alias)
        self.vacuumer = None if vacuum is None else Vacuumer(vacuum)

    @classmethod
    def for_worker(cls, supervisor: SupervisorLike) -> Maintenance:
        return cls(
            backend_alias=supervisor.options.backend_alias,
            database_alias=supervisor.options.database_alias,
            worker_id=supervisor.worker_id,
            settings=supervisor.settings,
        )

    def start(self, specs: Sequence[ScheduleSpec]) -> None:
        """Sync the Schedule rows from the declared schedules (at worker start)."""
        report = self.scheduler.sync(specs)
        logger.info(
            "schedules synced added=%s changed=%s disabled=%s",
            len(report.added),
            len(report.changed),
            len(report.disabled),
        )

    def is_leader(self, now: float) -> bool:
        return now < self.leader_until

    def run_once(self, now: float) -> None:
        """Renew or try to take the lease when due; as leader, schedule, prune and vacuum when
        due."""
        if now >= self.next_lease_at:
            self._lead_or_follow(now)
        if not self.is_leader(now):
            return
        if now >= self.next_schedule_at:
            self._enqueue_due(now)
        if now >= self.next_prune_at:
            done = self.pruner.run_once()
            self.next_prune_at = now + (PRUNE_INTERVAL if done else MIN_STEP)
        if self.vacuumer is not None:
            self.vacuumer.run_once(now)

    def _lead_or_follow(self, now: float) -> None:
        lease = self.settings.LEASE_SECONDS
        was_leader = self.is_leader(now)
        if self.lease.acquire_or_renew():
            # Counted from before the UPDATE: the database's lease ends no earlier than this.
            self.leader_until = now + lease
            if not was_leader:
                self.next_schedule_at = self.next_prune_at = now
        else:
            self.leader_until = 0.0
            if self.vacuumer is not None:
                self.vacuumer.stop()  # the new leader's to do
        # Renewed three times per lease; followers look as often, jittered, so fail-over
        # takes at most about 1.3 leases.
        self.next_lease_at = now + lease / 3 * random.uniform(0.8, 1.0)  # noqa: S311

    def _enqueue_due(self, now: float) -> None:
        tick = self.scheduler.enqueue_due()
        wait = SCHEDULE_RECHECK
        if tick.next_due_at is not None:
            wait = min(wait, (tick.next_due_at - tick.now).total_seconds())
        self.next_schedule_at = now + max(MIN_STEP, wait)

    @property
    def next_step_at(self) -> float:
        """The monotonic time of the next step that may have work."""
        if self.leader_until == 0.0:
            return self.next_lease_at
        steps = [self.next_lease_at, self.next_schedule_at, self.next_prune_at]
        if self.vacuumer is not None:
            steps.append(self.vacuumer.next_check_at)
        return min(steps)

    def stop(self) -> None:
        """Cancel a running vacuum; give the lease up so another worker leads at once."""
        if self.vacuumer is not None:
            self.vacuumer.stop()
        if self.is_leader(time.monotonic()):
            self.lease.release()
        self.leader_until = 0.0
