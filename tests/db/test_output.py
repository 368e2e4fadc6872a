"""Reading a task's log and progress: lines in order, following a running task, unknown ids."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.tasks import TaskResult, TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

import taskmill
from taskmill.models import LogChunk, TaskRecord
from taskmill.output import LineAssembler, LogLine, Progress, open_log
from taskmill.states import State
from tests.db.rows import set_state, store_progress, write_chunk
from tests.testapp import tasks
from tests.testapp.models import Article
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db


def texts(lines: list[LogLine]) -> list[tuple[int, str, str]]:
    return [(line.attempt, line.stream, line.text) for line in lines]


# --- logs(): everything stored so far -----------------------------------------------------


def test_logs__lines_in_order_across_streams_and_attempts() -> None:
    result = tasks.noop.enqueue()
    write_chunk(result, "one\ntwo\n")
    write_chunk(result, "INFO app: three\n", stream="log")
    write_chunk(result, "oops\n", stream="stderr")
    write_chunk(result, "again\n", attempt=2)
    set_state(result, State.SUCCEEDED, attempts=2)

    lines = taskmill.logs(result)

    assert texts(lines) == [
        (1, "stdout", "one"),
        (1, "stdout", "two"),
        (1, "log", "INFO app: three"),
        (1, "stderr", "oops"),
        (2, "stdout", "again"),
    ]
    assert all(isinstance(line, LogLine) for line in lines)


def test_logs__a_line_split_across_chunks_is_joined_per_stream() -> None:
    result = tasks.noop.enqueue()
    write_chunk(result, "hel")
    write_chunk(result, "warn", stream="stderr")
    write_chunk(result, "lo\nwor")
    write_chunk(result, "ing\n", stream="stderr")
    write_chunk(result, "ld\n")
    set_state(result, State.SUCCEEDED, attempts=1)

    assert texts(taskmill.logs(result.id)) == [
        (1, "stdout", "hello"),
        (1, "stderr", "warning"),
        (1, "stdout", "world"),
    ]


def test_logs__partial_lines_of_an_ended_attempt_are_lines() -> None:
    result = tasks.noop.enqueue()
    write_chunk(result, "no newline", attempt=1)
    write_chunk(result, "second try\nand a tail", attempt=2)
    set_state(result, State.FAILED, attempts=2)

    assert texts(taskmill.logs(result)) == [
        (1, "stdout", "no newline"),
        (2, "stdout", "second try"),
        (2, "stdout", "and a tail"),
    ]


def test_logs__of_a_running_task_includes_the_line_being_written() -> None:
    result = tasks.noop.enqueue()
    set_state(result, State.RUNNING, attempts=1)
    write_chunk(result, "done\nworking")

    assert [line.text for line in taskmill.logs(result)] == ["done", "working"]


def test_logs__blank_lines_and_markers_are_kept() -> None:
    result = tasks.noop.enqueue()
    write_chunk(result, "a\n\nb\n")
    marker = "output truncated: the log cap of 4194304 bytes was reached (LOG_CAP_BYTES)\n"
    write_chunk(result, marker, stream="marker")
    set_state(result, State.SUCCEEDED, attempts=1)

    assert texts(taskmill.logs(result)) == [
        (1, "stdout", "a"),
        (1, "stdout", ""),
        (1, "stdout", "b"),
        (1, "marker", marker.rstrip("\n")),
    ]


def test_logs__a_task_without_output_has_no_lines() -> None:
    assert taskmill.logs(tasks.noop.enqueue()) == []


def test_logs__line_time_is_when_its_chunk_was_stored() -> None:
    result = tasks.noop.enqueue()
    chunk = write_chunk(result, "x\n")

    (line,) = taskmill.logs(result)

    assert line.time == chunk.created_at


def test_logs__reads_in_batches_with_a_bounded_number_of_queries(
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    result = tasks.noop.enqueue()
    now = timezone.now()
    LogChunk.objects.bulk_create(
        LogChunk(
            task_id=result.id,
            attempt=1,
            seq=seq,
            stream="stdout",
            text=f"{seq}\n",
            created_at=now,
        )
        for seq in range(1200)
    )
    set_state(result, State.SUCCEEDED, attempts=1)

    # The lookup, the task row, and one query per 500 chunks.
    with django_assert_max_num_queries(5):
        lines = taskmill.logs(result)

    assert [line.text for line in lines] == [str(seq) for seq in range(1200)]


@pytest.mark.parametrize("unknown", [str(uuid.uuid4()), "not-an-id", ""])
def test_logs__unknown_id_raises_does_not_exist(unknown: str) -> None:
    with pytest.raises(TaskResultDoesNotExist):
        taskmill.logs(unknown)
    with pytest.raises(TaskResultDoesNotExist):
        taskmill.logs(unknown, follow=True)
    with pytest.raises(TaskResultDoesNotExist):
        taskmill.progress(unknown)


# --- LineAssembler ------------------------------------------------------------------------


def chunk(text: str, *, stream: str = "stdout", attempt: int = 1, seq: int = 0) -> LogChunk:
    return LogChunk(attempt=attempt, seq=seq, stream=stream, text=text, created_at=timezone.now())


def test_line_assembler__keeps_a_partial_line_until_its_newline() -> None:
    assembler = LineAssembler()

    assert assembler.feed(chunk("par")) == []
    assert [line.text for line in assembler.feed(chunk("tial\nnext"))] == ["partial"]
    assert [line.text for line in assembler.flush()] == ["next"]
    assert assembler.flush() == []


def test_line_assembler__a_later_attempt_flushes_the_earlier_one_first() -> None:
    assembler = LineAssembler()
    assembler.feed(chunk("tail of 1", stream="stderr"))

    lines = assembler.feed(chunk("first of 2\n", attempt=2))

    assert texts(lines) == [(1, "stderr", "tail of 1"), (2, "stdout", "first of 2")]


# --- following ----------------------------------------------------------------------------


@contextmanager
def in_thread(body: Callable[[], None]) -> Iterator[None]:
    """Run body in a thread with its own database connection; re-raise what it raised."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            body()
        except BaseException as error:  # handed to the test's thread
            raised.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=10)
    assert not thread.is_alive()
    if raised:
        raise raised[0]


@pytest.mark.django_db(transaction=True)
def test_logs_follow__yields_lines_as_they_are_stored_and_stops_when_the_task_ends() -> None:
    result = tasks.noop.enqueue()
    set_state(result, State.RUNNING, attempts=1)
    write_chunk(result, "first\nsecond half")
    seen: list[str] = []

    def worker() -> None:
        # Each step waits until the follower has shown the previous one: lines arrive live.
        wait_until(lambda: seen == ["first"], message=lambda: f"seen={seen}")
        write_chunk(result, " done\n")
        wait_until(lambda: len(seen) == 2, message=lambda: f"seen={seen}")
        write_chunk(result, "last words")
        set_state(result, State.SUCCEEDED)

    with in_thread(worker):
        for line in taskmill.logs(result, follow=True, poll_interval=0.02, timeout=10):
            seen.append(line.text)

    assert seen == ["first", "second half done", "last words"]


@pytest.mark.django_db(transaction=True)
def test_logs_follow__a_retried_attempt_flushes_its_tail_before_the_next() -> None:
    result = tasks.noop.enqueue()
    set_state(result, State.READY, attempts=1)
    write_chunk(result, "attempt one ends without newline")

    follower = taskmill.logs(result, follow=True, poll_interval=0.02, timeout=10)

    assert next(follower).text == "attempt one ends without newline"
    set_state(result, State.SUCCEEDED, attempts=2)
    assert list(follower) == []


def test_logs_follow__of_a_finished_task_returns_everything_and_stops() -> None:
    result = tasks.noop.enqueue()
    write_chunk(result, "a\nb")
    set_state(result, State.SUCCEEDED, attempts=1)

    assert [line.text for line in taskmill.logs(result, follow=True)] == ["a", "b"]


def test_logs_follow__timeout_raises_timeout_error() -> None:
    result = tasks.noop.enqueue()
    set_state(result, State.RUNNING, attempts=1)
    write_chunk(result, "hello\n")
    follower = taskmill.logs(result, follow=True, poll_interval=0.01, timeout=0.05)

    assert next(follower).text == "hello"
    with pytest.raises(TimeoutError, match=f"task {result.id} was still running"):
        next(follower)


def test_log_reader__a_deleted_task_ends_following() -> None:
    result = tasks.noop.enqueue()
    reader = open_log(result)
    TaskRecord.objects.filter(id=result.id).delete()

    assert reader.poll() == []
    assert reader.finished


def test_log_reader__each_poll_costs_two_queries(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    result = tasks.noop.enqueue()
    set_state(result, State.RUNNING, attempts=1)
    reader = open_log(result)
    write_chunk(result, "x\n")

    with django_assert_num_queries(2):
        assert [line.text for line in reader.poll()] == ["x"]
    with django_assert_num_queries(2):
        assert reader.poll() == []


# --- progress -----------------------------------------------------------------------------


def test_progress__none_until_reported() -> None:
    assert taskmill.progress(tasks.noop.enqueue()) is None


def test_progress__reads_the_stored_progress() -> None:
    result = tasks.noop.enqueue()
    store_progress(result, 25, 200, "rows")

    found = taskmill.progress(result.id)

    assert found is not None
    assert (found.done, found.total, found.message) == (25, 200, "rows")
    assert found.fraction == 0.125
    assert found.percent == 12.5
    assert timezone.now() - found.updated_at < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("done", "total", "fraction"),
    [(3, None, None), (3, 0, None), (5, 4, 1.0), (-1, 4, 0.0), (1, 4, 0.25)],
)
def test_progress__fraction_is_clamped_and_none_without_a_total(
    done: float, total: float | None, fraction: float | None
) -> None:
    progress = Progress(done=done, total=total, message="", updated_at=timezone.now())

    assert progress.fraction == fraction
    assert progress.percent == (None if fraction is None else fraction * 100)


def test_progress__a_reader_sees_it_with_the_task_state() -> None:
    result = tasks.noop.enqueue()
    store_progress(result, 1, 2, "half")
    reader = open_log(result)

    reader.poll()

    assert reader.progress is not None
    assert reader.progress.message == "half"


# --- the TaskRecord conveniences behind history() -----------------------------------------


def test_history_rows__status_duration_progress_and_logs() -> None:
    article = Article.objects.create(title="A")
    result: TaskResult[..., Any] = tasks.title_of.using(for_object=article).enqueue(article)
    started = timezone.now()
    set_state(
        result,
        State.SUCCEEDED,
        attempts=1,
        started_at=started,
        finished_at=started + timedelta(seconds=90),
    )
    store_progress(result, 1, 1, "done")
    write_chunk(result, "title read\n")

    (record,) = taskmill.history(article)

    assert record.status == TaskResultStatus.SUCCESSFUL
    assert record.duration == timedelta(seconds=90)
    progress = record.get_progress()
    assert progress is not None
    assert progress.percent == 100
    assert [line.text for line in record.logs()] == ["title read"]


def test_history_rows__no_duration_before_the_end() -> None:
    record = TaskRecord.objects.get(id=tasks.noop.enqueue().id)

    assert record.status == TaskResultStatus.READY
    assert record.duration is None
    assert record.get_progress() is None
