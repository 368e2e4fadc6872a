"""A dependency graph run by several real workers at once: no dependant starts before all of
its dependencies finished, none is left blocked, and a failure cancels (or, with
on_dependency_failure="run", releases) exactly the tasks that wait for it."""

import random

import pytest

from taskmill.models import TaskRecord
from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.testapp.models import LedgerEntry
from tests.waiting import WaitUntil

pytestmark = pytest.mark.django_db(transaction=True)

ROOTS = 30
MIDDLE = 15
FAN_IN = 8


def _states(ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in TaskRecord.objects.filter(id__in=ids).values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    return counts


def _ran_after_its_dependencies(result_id: str, key: str) -> bool:
    # When the task body ran (its ledger row), not TaskRecord.started_at: that is stamped just
    # before the claim query, which may then wait for a lock held by the finishing dependency.
    ran_at = LedgerEntry.objects.get(key=key).created_at
    finished = TaskRecord.objects.get(id=result_id).dependencies.values_list(
        "finished_at", flat=True
    )
    return all(at is not None and at <= ran_at for at in finished)


def test_many_workers_run_a_graph_in_dependency_order(
    worker_process: WorkerFactory, wait_until: WaitUntil
) -> None:
    chooser = random.Random(7)  # noqa: S311 - a fixed graph, not a secret
    # Each layer in a queue of its own, each queue run by a worker of its own: every
    # dependency is then waited on across processes. (One worker for all of them could run
    # the whole graph by itself, and a fast one did, before the others had started.)
    roots = [tasks.ledger_task.enqueue(f"root-{n}") for n in range(ROOTS)]
    failing = tasks.fail_value_error.enqueue("a failed root")
    middle_task = tasks.ledger_task.using(queue_name="reports")
    middle = [
        middle_task.using(depends_on=chooser.sample(roots, FAN_IN)).enqueue(f"mid-{n}")
        for n in range(MIDDLE)
    ]
    last_task = tasks.ledger_task.using(queue_name="low")
    last = last_task.using(depends_on=middle).enqueue("last")
    cancelled = last_task.using(depends_on=[roots[0], failing]).enqueue("never")
    run_anyway = last_task.using(
        depends_on=[roots[1], failing], on_dependency_failure="run"
    ).enqueue("anyway")
    assert _states([r.id for r in [*middle, last, cancelled, run_anyway]]) == {"blocked": 18}

    for queue in ("default", "reports", "low"):
        worker_process("--concurrency", "2", "--queues", queue)

    succeeded = [r.id for r in [*roots, *middle, last, run_anyway]]
    wait_until(
        lambda: _states(succeeded) == {"succeeded": len(succeeded)},
        timeout=90,
        message=lambda: f"every task but the failures succeeded: {_states(succeeded)}",
    )
    assert TaskRecord.objects.get(id=failing.id).state == "failed"
    never = TaskRecord.objects.get(id=cancelled.id)
    assert never.state == "cancelled"
    assert never.errors[-1]["exception_class_path"] == "taskmill.exceptions.DependencyFailed"
    assert never.started_at is None
    for result in [*middle, last, run_anyway]:
        key = result.args[0]
        assert _ran_after_its_dependencies(result.id, key), f"{key} ran before a dependency ended"
    # Each layer ran in its own worker: the order held across processes, not inside one.
    workers = {
        owner.split(":")[1]
        for ids in TaskRecord.objects.filter(id__in=succeeded).values_list("worker_ids", flat=True)
        for owner in ids
    }
    assert len(workers) == 3
