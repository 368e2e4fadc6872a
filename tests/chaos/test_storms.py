"""Kill and SIGTERM storms (issue 8): four real workers run ledger tasks while a random one is
killed or stopped every ~2 s and replaced at once. No task is lost, none is left running, all
succeed, and every ledger row beyond one per task is an attempt the task's record shows.
"""

import time

import pytest

import taskmill
from tests.integration.helpers import short_lease_env
from tests.processes import WorkerFactory, WorkerProcess
from tests.testapp import tasks
from tests.waiting import WaitUntil

from .scale import Figures, scaled
from .storm import (
    Audit,
    Storm,
    Strike,
    audit,
    kill_supervisor_or_group,
    terminate,
    unfinished_count,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(scaled(600, 3600))]

# Bounded: sized to keep this file under a minute per database on a busy 2-core machine.
TASKS = scaled(600, 10_000)
CREW = 4
CONCURRENCY = "2"
EVERY = 2.0
# Bounded: a storm of ~10 s. Long: it rages until the queue is drained.
STRIKES = scaled(5, 1_000_000)
# "A little work" (asleep, so it costs no CPU), split around the ledger row. Long enough that the
# bounded 600 tasks outlast most strikes even when the machine is idle: 8 slots need 6 s, and
# each strike costs a worker's start-up.
WORK_SECONDS = scaled(0.08, 0.05)
DRAIN_TIMEOUT = scaled(240, 1800)
# Generous: a SIGTERMed worker's running tasks (under 0.1 s each) finish long before it runs out.
LONG_GRACE = "30"


def _enqueue(prefix: str) -> list[str]:
    keys = [f"{prefix}-{n}" for n in range(TASKS)]
    taskmill.enqueue_many(tasks.ledger_attempt, [((key, WORK_SECONDS), {}) for key in keys])
    return keys


def _storm(
    worker_process: WorkerFactory, strike: Strike, *args: str, env: dict[str, str] | None = None
) -> Storm:
    """A storm over workers started with `args` and `env`.

    Without `env` the workers keep the default 30 s lease. SIGTERM storms do: nothing there
    should need rescuing, and a task a stopped worker left running is rescued (a WorkerLost
    error, which fails the test) only after that, never mistaken for a heartbeat that a busy
    machine delayed past a 2 s lease.
    """

    def start() -> WorkerProcess:
        return worker_process("--concurrency", CONCURRENCY, *args, env=env)

    return Storm(start_worker=start, strike=strike)


def _weather(storm: Storm, wait_until: WaitUntil) -> float:
    """Man the crew, let the storm rage while tasks are left, then wait for the rest to drain;
    return the seconds it all took."""
    started = time.monotonic()
    storm.man(CREW)
    storm.rage(every=EVERY, at_most=STRIKES, while_=lambda: unfinished_count() > 0)
    wait_until(
        lambda: unfinished_count() == 0,
        timeout=DRAIN_TIMEOUT,
        interval=0.5,
        message=lambda: f"every task finished ({unfinished_count()} ready or running)",
    )
    return time.monotonic() - started


def _report(figures: Figures, storm: Storm, result: Audit, seconds: float) -> None:
    figures.update(
        tasks=TASKS,
        workers_started=storm.started,
        **dict(sorted(storm.strikes.items())),
        ledger_duplicates=result.duplicates,
        tasks_retried=result.retried,
        worker_lost_errors=result.worker_lost_errors,
        handed_back=result.handed_back,
        seconds=round(seconds, 1),
        tasks_per_s=round(TASKS / seconds, 1),
        seed=storm.seed,
    )


def test_kill_storm__no_task_lost_and_every_duplicate_is_a_lost_attempt(
    worker_process: WorkerFactory, wait_until: WaitUntil, figures: Figures
) -> None:
    keys = _enqueue("kill")
    # A 2 s lease, so the tasks of a killed worker are rescued within seconds.
    storm = _storm(worker_process, kill_supervisor_or_group, env=short_lease_env())
    seconds = _weather(storm, wait_until)
    result = audit(keys)
    _report(figures, storm, result, seconds)

    assert result.states == {"succeeded": TASKS}
    assert result.lost == []
    assert result.unexplained == []
    assert storm.strikes.total() > 0, "the queue drained before the storm struck"


def test_sigterm_storm__every_task_runs_exactly_once_and_each_worker_exits_zero(
    worker_process: WorkerFactory, wait_until: WaitUntil, figures: Figures
) -> None:
    keys = _enqueue("term")
    storm = _storm(worker_process, terminate, "--grace", LONG_GRACE)
    seconds = _weather(storm, wait_until)
    result = audit(keys)
    _report(figures, storm, result, seconds)

    assert result.states == {"succeeded": TASKS}
    assert result.lost == []
    assert result.unexplained == []
    assert (result.duplicates, result.retried, result.worker_lost_errors) == (0, 0, 0)
    assert result.handed_back == 0
    assert storm.strikes.total() > 0, "the queue drained before the storm struck"
    exits = [worker.wait(float(LONG_GRACE) + 30) for worker in storm.struck]
    assert exits == [0] * len(exits)


def test_sigterm_storm_without_grace__tasks_are_handed_back_and_none_lost(
    worker_process: WorkerFactory, wait_until: WaitUntil, figures: Figures
) -> None:
    keys = _enqueue("term0")
    storm = _storm(worker_process, terminate, "--grace", "0")
    seconds = _weather(storm, wait_until)
    result = audit(keys)
    _report(figures, storm, result, seconds)

    assert result.states == {"succeeded": TASKS}
    assert result.lost == []
    assert result.worker_lost_errors == 0
    assert result.unexplained == []
    assert storm.strikes.total() > 0, "the queue drained before the storm struck"
    exits = [worker.wait() for worker in storm.struck]
    assert exits == [0] * len(exits)
