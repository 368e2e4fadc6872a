"""enqueue_many's bulk insert (queue/insert_rows.py, PostgreSQL's COPY): rows equal enqueue()'s, all
or nothing, and one wake-up at commit."""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.tasks.signals import task_enqueued
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import taskmill
from taskmill import ids
from taskmill.backend import Call
from taskmill.models import TaskRecord
from taskmill.queue.postgres import CHANNEL, COPY_MIN_ROWS
from tests.testapp import tasks
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db

# A few calls take the multi-row INSERT everywhere; more than COPY_MIN_ROWS take COPY on
# PostgreSQL.
SIZES = [3, COPY_MIN_ROWS + 7]
# Arguments that each stress one step of the way to the row: COPY's escapes (backslash, tab,
# newline), JSON numbers PostgreSQL would rewrite (1e16, -0.0), 1 against True against 1.0 in
# the same place, quotes, non-ASCII text, nesting and a model reference.
AWKWARD_ARGUMENTS: list[tuple[list[Any], dict[str, Any]]] = [
    (["back\\slash", "tab\there", "new\nline\r\n", 'quote"s', "é✓😀"], {}),
    ([1e16, -0.0, 1.5e-300, 10**20], {"n": 1}),
    ([True, 1, 1.0, None, False, 0], {"n": True}),
    ([{"nested": [{"deep": ["\\N", "\\."]}]}], {"empty": {}, "list": []}),
    ([], {}),
]


def _comparable(record: TaskRecord) -> dict[str, str]:
    # repr(), so 1, 1.0 and True (equal in Python) stay different, as they are in JSON.
    return {
        field.attname: repr(getattr(record, field.attname))
        for field in TaskRecord._meta.concrete_fields
        if field.attname != "id"
    }


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Make timezone.now() return one instant, so two enqueues write the same times."""
    now = timezone.now().replace(microsecond=123456)
    monkeypatch.setattr(timezone, "now", lambda: now)
    return now


def _calls(count: int, article: Article) -> list[Call]:
    awkward = [*AWKWARD_ARGUMENTS, ([article], {"article": article})]
    return [awkward[index % len(awkward)] for index in range(count)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("count", SIZES)
@pytest.mark.parametrize("in_transaction", [False, True])
def test_enqueue_many__every_column_equals_what_enqueue_writes(
    frozen_now: datetime, count: int, in_transaction: bool
) -> None:
    article = Article.objects.create(title="owner")
    task = tasks.echo.using(
        priority=5, run_after=frozen_now + timedelta(minutes=1), for_object=article
    )
    calls = _calls(count, article)

    with transaction.atomic() if in_transaction else nullcontext():
        one_by_one = [task.enqueue(*args, **kwargs) for args, kwargs in calls]
        bulk = taskmill.enqueue_many(task, calls)

    stored = {
        str(record.id): record
        for record in TaskRecord.objects.filter(id__in=[r.id for r in one_by_one + bulk])
    }
    for single, many in zip(one_by_one, bulk, strict=True):
        assert _comparable(stored[many.id]) == _comparable(stored[single.id])
        assert (many.args, many.kwargs) == (single.args, single.kwargs)
        assert many.task == single.task
    assert [result.id for result in bulk] == sorted(result.id for result in bulk)


@pytest.mark.parametrize("count", SIZES)
def test_enqueue_many__rolled_back_with_the_atomic_block_whatever_the_size(count: int) -> None:
    with transaction.atomic():
        taskmill.enqueue_many(tasks.add, [((n, n), {}) for n in range(count)])
        assert TaskRecord.objects.count() == count
        transaction.set_rollback(True)

    assert not TaskRecord.objects.exists()


@pytest.mark.parametrize("count", SIZES)
def test_enqueue_many__a_bad_last_argument_writes_nothing(count: int) -> None:
    calls: list[Call] = [((n, n), {}) for n in range(count - 1)]

    with pytest.raises(TypeError, match=rf"calls\[{count - 1}\]: Unsupported type"):
        taskmill.enqueue_many(tasks.echo, [*calls, ((object(),), {})])

    assert not TaskRecord.objects.exists()


@pytest.mark.parametrize("count", SIZES)
def test_enqueue_many__a_row_the_database_refuses_writes_none_of_the_others(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    taken = tasks.noop.enqueue()
    make_ids = ids.new_task_hexes

    def last_id_taken(how_many: int) -> list[str]:
        return [*make_ids(how_many)[:-1], uuid.UUID(taken.id).hex]

    monkeypatch.setattr("taskmill.backend.new_task_hexes", last_id_taken)

    with pytest.raises(IntegrityError):
        taskmill.enqueue_many(tasks.add, [((n, n), {}) for n in range(count)])

    # The error is Django's (COPY's driver error is wrapped as execute() wraps its own).
    assert list(TaskRecord.objects.values_list("id", flat=True)) == [uuid.UUID(taken.id)]


# --- the wake-up on PostgreSQL ------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[Callable[[float], list[str]]]:
    """A LISTEN connection of its own; calling it returns the payloads that arrived within
    the given seconds (or sooner, once one has arrived and the rest are in)."""
    listening = connection.get_new_connection(connection.get_connection_params())
    listening.autocommit = True
    listening.execute(f"LISTEN {CHANNEL}")

    def received(timeout: float) -> list[str]:
        payloads: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = deadline - time.monotonic()
            for notify in listening.notifies(timeout=max(left, 0.01), stop_after=1):
                payloads.append(notify.payload)
            if payloads:
                # Whatever else one commit sent is already in: PostgreSQL delivers a
                # transaction's notifications together.
                payloads += [n.payload for n in listening.notifies(timeout=0.2)]
                break
        return payloads

    yield received
    listening.close()


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("count", SIZES)
def test_enqueue_many__one_notify_per_call_in_autocommit(
    listener: Callable[[float], list[str]], count: int
) -> None:
    taskmill.enqueue_many(tasks.add, [((n, n), {}) for n in range(count)])

    assert listener(5.0) == ["default"]


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("count", SIZES)
def test_enqueue_many__notify_is_sent_at_commit_not_before(
    listener: Callable[[float], list[str]], count: int
) -> None:
    with transaction.atomic():
        taskmill.enqueue_many(tasks.add, [((n, n), {}) for n in range(count)])
        assert listener(0.3) == []

    assert listener(5.0) == ["default"]


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db(transaction=True)
def test_enqueue_many__rolled_back_call_sends_no_notify(
    listener: Callable[[float], list[str]],
) -> None:
    with transaction.atomic():
        taskmill.enqueue_many(tasks.add, [((n, n), {}) for n in range(COPY_MIN_ROWS)])
        transaction.set_rollback(True)

    assert listener(0.5) == []
    assert not TaskRecord.objects.exists()


# --- the garbage collector, paused for the call ---------------------------------------------


def test_enqueue_many__collector_runs_again_after_the_call_even_when_it_fails() -> None:
    paused_inside: list[bool] = []

    def note(sender: object, **kwargs: object) -> None:
        paused_inside.append(not gc.isenabled())

    task_enqueued.connect(note, weak=False)
    try:
        taskmill.enqueue_many(tasks.add, [((1, 1), {}), ((2, 2), {})])
    finally:
        task_enqueued.disconnect(note)
    with pytest.raises(TypeError):
        taskmill.enqueue_many(tasks.echo, [((object(),), {})])

    assert paused_inside == [True, True]
    assert gc.isenabled()


def test_enqueue_many__a_collector_the_caller_disabled_stays_disabled() -> None:
    gc.disable()
    try:
        taskmill.enqueue_many(tasks.add, [((1, 1), {})])
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- COPY seen as Django sees a query -------------------------------------------------------


def _enqueue_copied(path: str) -> None:
    """The two ways to a COPY: copies of one template, and rows of their own (dependencies)."""
    calls: list[Call] = [((n, n), {}) for n in range(COPY_MIN_ROWS)]
    task = tasks.add if path == "copies" else tasks.add.using(depends_on=[tasks.noop.enqueue()])
    taskmill.enqueue_many(task, calls)


@pytest.mark.only_on("postgresql")
@pytest.mark.parametrize("path", ["copies", "rows"])
def test_enqueue_many__copy_is_in_connection_queries_and_seen_by_execute_wrappers(
    path: str,
) -> None:
    """assertNumQueries, the debug toolbar and instrumentation count it like a query."""
    seen: list[str] = []

    def wrapper(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        seen.append(sql)
        return execute(sql, *args)

    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(wrapper):
        _enqueue_copied(path)

    copies = [query["sql"] for query in captured.captured_queries if "COPY" in query["sql"]]
    assert len(copies) == 1
    assert copies[0].startswith('COPY "taskmill_taskrecord" (')
    assert copies[0] in seen
    assert TaskRecord.objects.filter(task_path__endswith=".add").count() == COPY_MIN_ROWS
