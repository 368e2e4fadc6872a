"""Enqueue measurements: task.enqueue() against its floor (a bare INSERT), and enqueue_many."""

import time
from collections.abc import Callable
from typing import Any

from django.core.management.color import no_style
from django.db import connection
from django.utils import timezone

from taskmill import enqueue_many
from taskmill.ids import new_task_id
from taskmill.models import LogChunk, TaskDependency, TaskRecord, Worker

from .catalogue import Figure, figure
from .plan import Plan
from .tasks import noop


def flush_queue() -> None:
    """Empty Taskmill's tables, so every run starts from the same empty queue."""
    tables = [model._meta.db_table for model in (TaskDependency, LogChunk, TaskRecord, Worker)]
    statements = connection.ops.sql_flush(
        no_style(), tables, reset_sequences=True, allow_cascade=True
    )
    connection.ops.execute_sql_flush(statements)


class BareInsert:
    """One INSERT of a row like the one task.enqueue() writes, through the same connection:
    what a client pays at least to store a task."""

    def __init__(self) -> None:
        result = noop.enqueue()
        row = TaskRecord.objects.get(id=result.id)
        fields = TaskRecord._meta.concrete_fields
        self.id_field = TaskRecord._meta.pk
        quote = connection.ops.quote_name
        self.sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - quoted identifiers only
            quote(TaskRecord._meta.db_table),
            ", ".join(quote(str(field.column)) for field in fields),
            ", ".join(["%s"] * len(fields)),
        )
        self.params = [
            field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields
        ]
        names = [field.attname for field in fields]
        self.id_index = names.index("id")
        self.time_field = TaskRecord._meta.get_field("enqueued_at")
        self.time_indexes = [names.index("enqueued_at"), names.index("run_after")]
        row.delete()

    def execute(self) -> None:
        params = list(self.params)
        # A fresh id and time made as enqueue makes them, so both write the same indexes the
        # same way (a row that repeats another's time lands elsewhere in the claim index).
        params[self.id_index] = self.id_field.get_db_prep_save(new_task_id(), connection)
        now = self.time_field.get_db_prep_save(timezone.now(), connection)
        for index in self.time_indexes:
            params[index] = now
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)


def _rate(count: int, action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    for _ in range(count):
        action()
    return count / (time.perf_counter() - start)


def measure_single_enqueue(plan: Plan) -> dict[str, Figure]:
    """Time task.enqueue() and the bare INSERT in alternating order, run after run."""
    assert connection.get_autocommit()  # noqa: S101 - the figure is for autocommit
    flush_queue()
    insert = BareInsert()
    enqueue_rates, insert_rates, ratios = [], [], []
    for run in range(plan.repeats):
        flush_queue()
        # Alternate which goes first, so a drift in the machine's load hits both alike.
        if run % 2 == 0:
            enqueued = _rate(plan.single_enqueues, noop.enqueue)
            inserted = _rate(plan.single_enqueues, insert.execute)
        else:
            inserted = _rate(plan.single_enqueues, insert.execute)
            enqueued = _rate(plan.single_enqueues, noop.enqueue)
        enqueue_rates.append(enqueued)
        insert_rates.append(inserted)
        ratios.append(enqueued / inserted)
    return {
        "enqueue_single": figure(enqueue_rates, "tasks/s"),
        "insert_floor": figure(insert_rates, "rows/s"),
        "enqueue_vs_insert": figure(ratios, "ratio"),
    }


def measure_enqueue_many(plan: Plan) -> dict[str, Figure]:
    """Time enqueue_many() of plan.bulk_enqueues no-op tasks into an empty queue."""
    calls: list[tuple[tuple[()], dict[str, Any]]] = [((), {})] * plan.bulk_enqueues
    rates = []
    for _ in range(plan.repeats):
        flush_queue()
        start = time.perf_counter()
        results = enqueue_many(noop, calls)
        rates.append(len(results) / (time.perf_counter() - start))
    flush_queue()
    return {"enqueue_many": figure(rates, "tasks/s")}
