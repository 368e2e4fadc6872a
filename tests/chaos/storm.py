"""Storms for the chaos tests: a crew of real workers, one picked at random and signalled every
few seconds and replaced at once; and the audit of the ledger the storm's tasks wrote.
"""

import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Count

from taskmill.models import TaskRecord
from taskmill.states import State
from tests.processes import WorkerProcess
from tests.testapp.models import LedgerEntry

WORKER_LOST = "taskmill.exceptions.WorkerLost"

# How a strike reaches a worker (it returns the strike's name, counted as a figure): a SIGKILL
# of its supervisor alone (the children must die with it) or of its whole process group (a host
# lost), or a SIGTERM (a deploy). The storm's random source picks, so a seed replays a storm.
type Strike = Callable[[WorkerProcess, random.Random], str]


def kill_supervisor_or_group(worker: WorkerProcess, rng: random.Random) -> str:
    """SIGKILL the supervisor alone or the whole process group, at random."""
    if rng.random() < 0.5:
        worker.send(signal.SIGKILL)
        return "kill_supervisor"
    worker.send_group(signal.SIGKILL)
    return "kill_group"


def terminate(worker: WorkerProcess, rng: random.Random) -> str:
    """SIGTERM the supervisor: a graceful stop."""
    worker.send(signal.SIGTERM)
    return "sigterm"


@dataclass(eq=False)
class Storm:
    """A crew of workers kept at its size while `strike` hits one of them every few seconds."""

    start_worker: Callable[[], WorkerProcess]
    strike: Strike
    seed: int = field(default_factory=lambda: random.randrange(2**32))  # noqa: S311 - not a secret
    crew: list[WorkerProcess] = field(default_factory=list)
    struck: list[WorkerProcess] = field(default_factory=list)
    strikes: Counter[str] = field(default_factory=Counter)
    started: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - chaos, not cryptography

    def man(self, size: int) -> None:
        """Start workers until the crew has `size` of them."""
        while len(self.crew) < size:
            self.crew.append(self.start_worker())
            self.started += 1

    def rage(self, *, every: float, at_most: int, while_: Callable[[], bool]) -> None:
        """Strike a random worker every `every` s (jittered) and replace it at once; stop after
        `at_most` strikes or as soon as `while_()` is false."""
        size = len(self.crew)
        while self.strikes.total() < at_most:
            # The storm's pace, not a wait for a condition: kills land wherever tasks are.
            time.sleep(every * self.rng.uniform(0.75, 1.25))
            if not while_():
                return
            victim = self.crew.pop(self.rng.randrange(len(self.crew)))
            self.strikes[self.strike(victim, self.rng)] += 1
            self.struck.append(victim)
            self.man(size)


def unfinished_count() -> int:
    """How many tasks are still ready or running."""
    return TaskRecord.objects.filter(state__in=[State.READY, State.RUNNING]).count()


@dataclass(frozen=True, slots=True, kw_only=True)
class Audit:
    """What the ledger and the records say about a storm's tasks, and every way they disagree."""

    states: dict[str, int]
    lost: list[str]  # keys enqueued with no ledger row
    unexplained: list[str]  # one line per ledger row or attempt the record doesn't account for
    duplicates: int  # ledger rows beyond one per task
    retried: int  # tasks with more than one attempt
    worker_lost_errors: int


def audit(keys: list[str]) -> Audit:
    """Check each task's ledger rows against its record.

    A task that succeeded wrote exactly one row in its last attempt. Any other row is from an
    earlier attempt that the record lists as lost (a WorkerLost error for that attempt); no
    attempt wrote two rows; every error on the record is a WorkerLost.
    """
    rows: dict[str, list[int]] = defaultdict(list)
    for result_id, attempt in LedgerEntry.objects.values_list("result_id", "attempt"):
        rows[result_id].append(attempt)
    seen_keys = set(LedgerEntry.objects.values_list("key", flat=True))
    states: dict[str, int] = dict(
        TaskRecord.objects.values_list("state").annotate(n=Count("id")).order_by()
    )
    unexplained: list[str] = []
    retried = worker_lost_errors = 0
    records = TaskRecord.objects.values_list("id", "attempts", "errors", "worker_ids")
    for task_id, attempts, errors, worker_ids in records.iterator(chunk_size=2000):
        written = Counter(rows.pop(str(task_id), []))
        lost = Counter(e["attempt"] for e in errors if e["exception_class_path"] == WORKER_LOST)
        worker_lost_errors += lost.total()
        retried += attempts > 1
        problems = _disagreements(attempts, written, lost, errors, worker_ids)
        unexplained.extend(f"task {task_id}: {problem}" for problem in problems)
    unexplained.extend(f"ledger rows of unknown task {rid}: {a}" for rid, a in rows.items())
    return Audit(
        states=states,
        lost=sorted(set(keys) - seen_keys),
        unexplained=unexplained,
        duplicates=LedgerEntry.objects.count() - len(seen_keys),
        retried=retried,
        worker_lost_errors=worker_lost_errors,
    )


def _disagreements(
    attempts: int,
    written: Counter[int],
    lost: Counter[int],
    errors: list[dict[str, object]],
    worker_ids: list[str],
) -> list[str]:
    problems = []
    if written[attempts] != 1:
        problems.append(f"its last attempt ({attempts}) wrote {written[attempts]} rows, not 1")
    for attempt, count in sorted(written.items()):
        if count > 1 and attempt != attempts:
            problems.append(f"attempt {attempt} wrote {count} rows")
        if attempt != attempts and not lost[attempt]:
            problems.append(f"a row of attempt {attempt}, which the record doesn't show as lost")
    for attempt, count in sorted(lost.items()):
        if count > 1 or attempt >= attempts:
            problems.append(f"{count} WorkerLost errors on attempt {attempt} of {attempts}")
    if len(errors) != lost.total():
        paths = [error["exception_class_path"] for error in errors]
        problems.append(f"errors other than WorkerLost: {paths}")
    if len(worker_ids) != attempts:
        problems.append(f"{attempts} attempts but {len(worker_ids)} worker ids")
    return problems
