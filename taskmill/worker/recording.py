"""Recording what the supervisor decided: outcomes, hand-backs, captured output, progress.

The supervisor decides (worker/endings.py, outcomes.next_transition); this module writes, in
as few statements as the queue allows, and says what was written so the supervisor can
forget the task or keep the write for after a database error.
"""

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Final

from django.db import transaction
from django.utils import timezone

from ..context import ProgressReport
from ..models import TaskRecord, build_record, record_columns
from ..outcomes import Transition
from ..queue.base import Queue
from ..queue.finishing import Finish
from ..queue.lease import Lease
from ..row_checks import read_errors, read_worker_ids
from .capture import OutputCollector

logger = logging.getLogger("taskmill.worker")

# Outcomes are written in batches while the worker has claimed tasks in hand: when this many
# are waiting, or when the oldest has waited this long, whichever comes first. With nothing
# in hand they are written at once.
WRITE_BATCH: Final = 100
WRITE_DELAY: Final = 0.05


@dataclass(slots=True, kw_only=True)
class Running:
    """A task this worker holds, with what it needs to record or release it."""

    record: TaskRecord
    # Its usable stored options (row_checks.read_options), read once at the claim.
    options: dict[str, Any]
    lease: Lease
    deadline: float | None  # monotonic time of its timeout; None also until dispatched
    # Monotonic time it was handed to a child: from then on it may have had side effects.
    dispatched_at: float | None = None
    output: OutputCollector
    progress: ProgressReport | None = None  # the latest report, until stored
    # The record as JSON text (payload.record_text), made when it is first sent to a child
    # and sent again, with what finishing wrote, to announce it finished.
    record_text: bytes | None = None


@dataclass(slots=True, kw_only=True)
class PendingWrite:
    """An outcome decided but not yet written (batched, or the database was away)."""

    running: Running
    transition: Transition | None  # None: release unrun


# What write() made of one PendingWrite: the fields written, or None if the lease was lost.
type Written = tuple[PendingWrite, dict[str, object] | None]


class Recorder:
    """Writes a worker's pending outcomes and running tasks' reports through its queue."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def write(self, batch: list[PendingWrite]) -> list[Written]:
        """Record every write of the batch: final outcomes in batched statements, and
        everything in one transaction when there is more than one kind of write to make.

        Raise the database's error with nothing written: the caller keeps the batch.
        """
        for write in batch:
            write.running.output.finish()
        runs = [write.running for write in batch]
        simple = not any(
            write.transition is None or not write.transition.is_final for write in batch
        ) and not any(r.progress is not None or r.output.has_unwritten for r in runs)
        # A batch of final outcomes with no output is one statement: no transaction needed.
        with (
            contextlib.nullcontext()
            if simple
            else transaction.atomic(using=self.queue.database_alias)
        ):
            # Output and progress first: a task seen finished has all of its output stored.
            self.store_reports(runs)
            results = self._write_all(batch)
        for write, changes in zip(batch, results, strict=True):
            if write.transition is None:
                logger.info("task released task_id=%s", write.running.lease.task_id)
            elif changes is not None:
                _log_outcome(write.running, write.transition)
        return list(zip(batch, results, strict=True))

    def store_reports(self, runs: list[Running]) -> None:
        """Write running tasks' captured output and latest progress; kept in memory on error."""
        chunks = []
        with_output = [r for r in runs if r.output.has_unwritten]
        for running in with_output:
            if running.output.next_seq is None:
                running.output.next_seq = self.queue.next_log_seq(
                    running.lease.task_id, running.lease.attempt
                )
            chunks.extend(running.output.take_chunks(timezone.now()))
        if chunks:
            self.queue.write_log_chunks(chunks)
            for running in with_output:
                running.output.written()
        for running in runs:
            if running.progress is not None:
                self.queue.set_progress(running.lease, running.progress)
                running.progress = None

    def _write_all(self, batch: list[PendingWrite]) -> list[dict[str, object] | None]:
        """Release or finish each write; return what was written for each (None: lease lost)."""
        finishes = [
            Finish(
                lease=write.running.lease,
                transition=write.transition,
                prior_errors=read_errors(write.running.record.errors)[0],
            )
            for write in batch
            if write.transition is not None
        ]
        finished = iter(self.queue.finish_many(finishes, now=timezone.now()))
        results: list[dict[str, object] | None] = []
        for write in batch:
            if write.transition is not None:
                results.append(next(finished))
                continue
            results.append({} if self._hand_back(write.running) else None)
        return results

    def _hand_back(self, running: Running) -> bool:
        prior = read_worker_ids(running.record.worker_ids)[0][:-1]
        handed_back = running.record.handed_back
        return self.queue.release(
            running.lease,
            prior_worker_ids=prior,
            started=running.dispatched_at is not None,
            # A hand-edited column must not stop the hand-back: the note is then the only one.
            prior_handed_back=handed_back if isinstance(handed_back, list) else [],
        )


def as_finished(claimed: TaskRecord, changes: dict[str, object]) -> TaskRecord:
    """The record as it now stands, built from the claim and what finish() wrote."""
    values = vars(claimed)
    columns = {name: values[name] for name in record_columns()}
    columns.update(changes)
    # Not copy.copy(): a model's copy goes through pickling's protocol, 3x the cost.
    return build_record(columns, database=claimed._state.db)


def _log_outcome(running: Running, transition: Transition) -> None:
    level = logging.WARNING if transition.error is not None else logging.INFO
    error = transition.error.exception_class_path if transition.error else "-"
    logger.log(
        level,
        "task %s task_id=%s path=%s attempt=%s error=%s",
        transition.state,
        running.lease.task_id,
        running.record.task_path,
        running.lease.attempt,
        error,
    )
