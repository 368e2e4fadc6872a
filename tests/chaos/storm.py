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
# lost), or a SIGTERM (a deploy). The storm's random source picks; its seed is a reported figure.
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


def is_up(worker: WorkerProcess) -> bool:
    """Whether the worker has started: its signal handlers are in place and it claims tasks.

    A SIGTERM before that ends the process by the default action (exit -15) while it is still
    importing Django, with no task in hand; the storm strikes workers at work.
    """
    return "worker started" in worker.output()


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
        """Strike a random worker that is up every `every` s (jittered) and replace it at once;
        stop after `at_most` strikes or as soon as `while_()` is false."""
        size = len(self.crew)
        while self.strikes.total() < at_most:
            # The storm's pace, not a wait for a condition: kills land wherever tasks are.
            time.sleep(every * self.rng.uniform(0.75, 1.25))
            if not while_():
                return
            up = [worker for worker in self.crew if is_up(worker)]
            if not up:
                continue
            victim = up[self.rng.randrange(len(up))]
            self.crew.remove(victim)
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
    unexplained: list[str]  # one line per task whose ledger rows its record doesn't account for
    duplicates: int  # ledger rows beyond one per task
    retried: int  # tasks with more than one attempt
    worker_lost_errors: int
    handed_back: int  # started attempts a graceful shutdown handed back


def audit(keys: list[str]) -> Audit:
    """Check each task's ledger rows against its record.

    A task that succeeded wrote one row in its last attempt. Every earlier attempt ended with
    a WorkerLost error (the storms cause no other), and wrote at most one row. An attempt a
    shutdown handed back is noted on the record (its number is then used again), and may have
    written one row more.
    """
    rows: dict[str, list[int]] = defaultdict(list)
    for result_id, attempt in LedgerEntry.objects.values_list("result_id", "attempt"):
        rows[result_id].append(attempt)
    seen_keys = set(LedgerEntry.objects.values_list("key", flat=True))
    states: dict[str, int] = dict(
        TaskRecord.objects.values_list("state").annotate(n=Count("id")).order_by()
    )
    unexplained: list[str] = []
    retried = worker_lost_errors = handed_back = 0
    records = TaskRecord.objects.values_list(
        "id", "attempts", "errors", "worker_ids", "handed_back"
    )
    for task_id, attempts, errors, worker_ids, notes in records.iterator(chunk_size=2000):
        shown = Attempts(
            count=attempts,
            lost=Counter(e["attempt"] for e in errors if e["exception_class_path"] == WORKER_LOST),
            handed_back=Counter(note["attempt"] for note in notes),
            errors=[error["exception_class_path"] for error in errors],
            worker_ids=len(worker_ids),
        )
        worker_lost_errors += shown.lost.total()
        handed_back += shown.handed_back.total()
        retried += attempts > 1
        problems = shown.disagreements(Counter(rows.pop(str(task_id), [])))
        if problems:
            unexplained.append(f"task {task_id}: {'; '.join(problems)}")
    unexplained.extend(f"ledger rows of unknown task {rid}: {a}" for rid, a in rows.items())
    return Audit(
        states=states,
        lost=sorted(set(keys) - seen_keys),
        unexplained=unexplained,
        duplicates=LedgerEntry.objects.count() - len(seen_keys),
        retried=retried,
        worker_lost_errors=worker_lost_errors,
        handed_back=handed_back,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempts:
    """The attempts one task's record shows."""

    count: int
    lost: Counter[int]  # WorkerLost errors by attempt number
    handed_back: Counter[int]  # hand-back notes by attempt number
    errors: list[str]
    worker_ids: int

    def disagreements(self, written: Counter[int]) -> list[str]:
        """Return how the ledger rows `written` (counted by attempt) contradict the record."""
        problems = []
        last = self.count
        if not 1 <= written[last] <= 1 + self.handed_back[last]:
            problems.append(
                f"its last attempt ({last}) wrote {written[last]} rows and was handed back "
                f"{self.handed_back[last]} times"
            )
        for attempt, count in sorted(written.items()):
            allowed = self.lost[attempt] + self.handed_back[attempt]
            if attempt != last and count > allowed:
                problems.append(
                    f"attempt {attempt} wrote {count} rows; the record shows it lost "
                    f"{self.lost[attempt]} and handed back {self.handed_back[attempt]} times"
                )
        if self.lost != Counter(range(1, last)) or len(self.errors) != self.lost.total():
            problems.append(f"attempts 1 to {last - 1} should each end lost; errors: {self.errors}")
        if any(attempt > last for attempt in self.handed_back):
            problems.append(f"hand-backs of attempts past {last}: {sorted(self.handed_back)}")
        if self.worker_ids != last:
            problems.append(f"{last} attempts but {self.worker_ids} worker ids")
        return problems
