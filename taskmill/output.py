"""Reading what a task reported while it ran: its captured log as lines, and its progress.

Reads only: the worker's capture (worker/) writes LogChunk rows and TaskRecord.progress.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, TypedDict, overload
from uuid import UUID

from django.db.models import Q
from django.tasks import TaskResult
from django.utils.dateparse import parse_datetime

from .lookup import find_record
from .models import LogChunk, TaskRecord
from .routers import queue_databases
from .states import State, is_finished

# Chunks read per query while following: a chatty task is caught up in a few round trips,
# and one poll never loads a whole capped log at once.
FOLLOW_BATCH_SIZE: Final = 500


class StoredProgress(TypedDict):
    """TaskRecord.progress as the worker stores it (JSON)."""

    done: float
    total: float | None
    message: str
    updated_at: str  # ISO 8601


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine:
    """One line of a task's captured output, without its newline."""

    time: datetime  # when the chunk that completed the line was stored
    stream: str  # a LogStream value: "stdout", "stderr", "log" or "marker"
    text: str
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """The progress a task last reported."""

    done: float
    total: float | None
    message: str
    updated_at: datetime

    @property
    def fraction(self) -> float | None:
        """Return done / total between 0 and 1, or None without a (positive) total."""
        if not self.total or self.total <= 0:
            return None
        return min(max(self.done / self.total, 0.0), 1.0)

    @property
    def percent(self) -> float | None:
        """Return the fraction as a percentage, or None without a total."""
        fraction = self.fraction
        return None if fraction is None else fraction * 100

    @classmethod
    def from_stored(cls, stored: StoredProgress | dict[str, Any] | None) -> Progress | None:
        """Build a Progress from TaskRecord.progress; None if the task reported none."""
        if not stored:
            return None
        updated_at = parse_datetime(str(stored.get("updated_at", "")))
        if updated_at is None:
            raise ValueError(f"progress has no valid updated_at: {stored!r}")
        return cls(
            done=stored.get("done", 0),
            total=stored.get("total"),
            message=str(stored.get("message", "")),
            updated_at=updated_at,
        )


class LineAssembler:
    """Join chunks, fed in (attempt, seq) order, into lines per attempt and stream.

    A line is emitted when its newline arrives, so lines of different streams come out in the
    order they were completed. A line without a newline yet is kept until flushed.
    """

    def __init__(self) -> None:
        self._partial: dict[tuple[int, str], tuple[str, datetime]] = {}

    def feed(self, chunk: LogChunk) -> list[LogLine]:
        # A chunk of a later attempt means the earlier attempts ended: their tails are lines.
        lines = self.flush(before_attempt=chunk.attempt)
        key = (chunk.attempt, chunk.stream)
        head, _ = self._partial.pop(key, ("", chunk.created_at))
        *complete, rest = (head + chunk.text).split("\n")
        lines += [
            LogLine(time=chunk.created_at, stream=chunk.stream, text=text, attempt=chunk.attempt)
            for text in complete
        ]
        if rest:
            self._partial[key] = (rest, chunk.created_at)
        return lines

    def flush(self, *, before_attempt: int | None = None) -> list[LogLine]:
        """Emit the kept partial lines (of attempts before `before_attempt`, if given)."""
        keys = [key for key in self._partial if before_attempt is None or key[0] < before_attempt]
        lines = []
        for attempt, stream in sorted(keys, key=lambda key: (key[0], self._partial[key][1])):
            text, stored_at = self._partial.pop((attempt, stream))
            lines.append(LogLine(time=stored_at, stream=stream, text=text, attempt=attempt))
        return lines


class LogReader:
    """Read one task's log incrementally: each poll() returns the lines stored since the last.

    A poll reads the task row first and the chunks second, so once a poll has seen the task
    finished, it has also read every chunk (the worker stores output before the outcome).
    """

    def __init__(self, database: str, task_id: UUID, *, after: tuple[int, int] = (0, -1)) -> None:
        self.database = database
        self.task_id = task_id
        self.state: State | None = None  # None once the row is gone (pruned, deleted)
        self.attempts = 0
        self.progress: Progress | None = None
        self._cursor = after  # the last (attempt, seq) read
        self._assembler = LineAssembler()

    @classmethod
    def of(cls, record: TaskRecord) -> LogReader:
        """Return a reader for a row, in the database the row was read from."""
        return cls(record._state.db or queue_databases()[0], record.id)

    @property
    def finished(self) -> bool:
        """Tell whether the task ended (or vanished) and every line was returned."""
        return self.state is None or is_finished(self.state)

    @property
    def cursor(self) -> tuple[int, int]:
        """The (attempt, seq) of the last chunk read: where a later reader may start."""
        return self._cursor

    def poll(self) -> list[LogLine]:
        """Return the complete lines stored since the last poll; partial lines too once their
        attempt has ended."""
        self.refresh()
        lines = [line for chunk in self._read_chunks() for line in self._assembler.feed(chunk)]
        if self.finished:
            return lines + self._assembler.flush()
        # Only a running attempt can still end a line it began.
        running = self.attempts if self.state == State.RUNNING else self.attempts + 1
        return lines + self._assembler.flush(before_attempt=running)

    def refresh(self) -> None:
        """Read the task's state, attempts and progress (not its log)."""
        row = (
            TaskRecord.objects.using(self.database)
            .filter(id=self.task_id)
            .values_list("state", "attempts", "progress")
            .first()
        )
        if row is not None:
            self.state, self.attempts = State(row[0]), row[1]
            self.progress = Progress.from_stored(row[2])
        else:
            self.state = None

    def read_all(self) -> list[LogLine]:
        """Return every line not returned yet, a partial last line included as it stands.

        A snapshot: poll() is not meant to be called after it.
        """
        lines = self.poll()
        return lines + self.flush()

    def flush(self) -> list[LogLine]:
        """Return the lines still waiting for their newline, as they stand, and forget them.

        For a snapshot that a client goes on from `cursor` (the admin's live log).
        """
        return self._assembler.flush()

    def _read_chunks(self) -> Iterator[LogChunk]:
        while True:
            batch = self.read_batch()
            yield from batch
            if len(batch) < FOLLOW_BATCH_SIZE:
                return

    def read_batch(self) -> list[LogChunk]:
        """Return up to FOLLOW_BATCH_SIZE chunks after the cursor, as stored, and move past them.

        For a client that joins chunks into lines itself (the admin's live log); call
        refresh() first to learn the task's state and progress.
        """
        attempt, seq = self._cursor
        # Served by the (task, attempt, seq) unique index: a range scan from the cursor.
        batch = list(
            LogChunk.objects.using(self.database)
            .filter(Q(attempt__gt=attempt) | Q(attempt=attempt, seq__gt=seq), task=self.task_id)
            .order_by("attempt", "seq")
            .only("attempt", "seq", "stream", "text", "created_at")[:FOLLOW_BATCH_SIZE]
        )
        if batch:
            self._cursor = (batch[-1].attempt, batch[-1].seq)
        return batch


def find_task(result: str | TaskResult[..., Any]) -> tuple[str, UUID]:
    """Return (database alias, task id) of a result id or TaskResult.

    Raise TaskResultDoesNotExist for an unknown id.
    """
    record = find_record(result, only=("id",))
    return str(record._state.db), record.id


def open_log(result: str | TaskResult[..., Any]) -> LogReader:
    """Return a LogReader for a task. Raise TaskResultDoesNotExist for an unknown id."""
    return LogReader(*find_task(result))


@overload
def logs(
    result: str | TaskResult[..., Any],
    *,
    follow: Literal[False] = False,
    poll_interval: float = 0.5,
    timeout: float | None = None,
) -> list[LogLine]: ...
@overload
def logs(
    result: str | TaskResult[..., Any],
    *,
    follow: Literal[True],
    poll_interval: float = 0.5,
    timeout: float | None = None,
) -> Iterator[LogLine]: ...
@overload
def logs(
    result: str | TaskResult[..., Any],
    *,
    follow: bool,
    poll_interval: float = 0.5,
    timeout: float | None = None,
) -> list[LogLine] | Iterator[LogLine]: ...
def logs(
    result: str | TaskResult[..., Any],
    *,
    follow: bool = False,
    poll_interval: float = 0.5,
    timeout: float | None = None,
) -> list[LogLine] | Iterator[LogLine]:
    """Return a task's captured output as lines, in the order it was written.

    With follow, return an iterator that polls every poll_interval seconds and yields lines
    as they are stored, until the task has finished and every line was read; it raises
    TimeoutError if timeout seconds pass first. Raise TaskResultDoesNotExist for an unknown
    id (at once, even with follow).
    """
    reader = open_log(result)
    if not follow:
        return reader.read_all()
    return _follow(reader, poll_interval, timeout)


def _follow(reader: LogReader, poll_interval: float, timeout: float | None) -> Iterator[LogLine]:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        yield from reader.poll()
        if reader.finished:
            return
        pause = poll_interval
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"task {reader.task_id} was still {reader.state} after {timeout} s"
                )
            pause = min(pause, left)
        time.sleep(pause)


def progress(result: str | TaskResult[..., Any]) -> Progress | None:
    """Return the progress a task last reported, or None if it reported none.

    Raise TaskResultDoesNotExist for an unknown id.
    """
    return Progress.from_stored(find_record(result, only=("id", "progress")).progress)
