"""Capturing what a task writes (stdout, stderr, logging records) as LogChunk rows.

In a forked child, file descriptors 1 and 2 and a third pipe for logging records lead to the
supervisor, which reads them while the task runs and stores them about every second. Output of
subprocesses and C extensions is captured too, and whatever a task wrote before it was killed is
kept: the supervisor, not the dying child, holds it. With the solo pool, sys.stdout and
sys.stderr are redirected inside the process instead.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import logging
import os
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Final
from uuid import UUID

from ..models import LogChunk, LogStream
from .pipeline import marker

# Large enough that a burst of output costs few rows, small enough for any database's packet.
CHUNK_CHARS: Final = 64 * 1024
RECORD_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"


class OutputCollector:
    """What one attempt wrote, cut into LogChunk rows, up to a cap of bytes.

    Past the cap, bytes are counted, not kept, so a task writing without end neither blocks
    nor fills the supervisor's memory.
    """

    def __init__(self, task_id: UUID, attempt: int, cap: int) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.cap = cap
        self.kept = 0
        self.dropped = 0
        # Unknown until the first write: a task handed back unrun by a graceful shutdown runs
        # this attempt number again, after the output its first run stored.
        self.next_seq: int | None = None
        self.pending: list[tuple[str, str]] = []  # (stream, text), in the order written
        self.unwritten: list[LogChunk] = []
        self._decoders: dict[str, codecs.IncrementalDecoder] = {}
        self._finished = False

    @property
    def has_unwritten(self) -> bool:
        return bool(self.pending or self.unwritten)

    def feed(self, stream: str, data: bytes) -> None:
        if not data:
            return
        room = self.cap - self.kept
        if room <= 0:
            self.dropped += len(data)
            return
        kept = data[:room]
        self.kept += len(kept)
        self._append(stream, self._decoder(stream).decode(kept))
        if len(data) > room:
            self.dropped += len(data) - room
            self._flush_decoders()
            self._append(
                LogStream.MARKER,
                f"output truncated: the log cap of {self.cap} bytes was reached "
                "(TASKMILL['LOG_CAP_BYTES'])\n",
            )

    def finish(self) -> None:
        """Close the attempt's output: complete any half-decoded character, count drops."""
        if self._finished:
            return
        self._finished = True
        self._flush_decoders()
        if self.dropped:
            self._append(LogStream.MARKER, f"{self.dropped} more bytes were dropped\n")

    def take_chunks(self, now: datetime) -> list[LogChunk]:
        """Return every row not yet stored, new ones included; call written() once stored."""
        assert self.next_seq is not None  # noqa: S101 - set by the supervisor before writing
        for stream, text in self.pending:
            for start in range(0, len(text), CHUNK_CHARS):
                self.unwritten.append(
                    LogChunk(
                        task_id=self.task_id,
                        attempt=self.attempt,
                        seq=self.next_seq,
                        stream=stream,
                        text=text[start : start + CHUNK_CHARS],
                        created_at=now,
                    )
                )
                self.next_seq += 1
        self.pending = []
        return list(self.unwritten)

    def written(self) -> None:
        self.unwritten = []

    def _decoder(self, stream: str) -> codecs.IncrementalDecoder:
        if stream not in self._decoders:
            self._decoders[stream] = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return self._decoders[stream]

    def _flush_decoders(self) -> None:
        for stream, decoder in self._decoders.items():
            self._append(stream, decoder.decode(b"", final=True))

    def _append(self, stream: str, text: str) -> None:
        if not text:
            return
        if self.pending and self.pending[-1][0] == stream:
            self.pending[-1] = (stream, self.pending[-1][1] + text)
        else:
            self.pending.append((stream, text))


# -- In a forked child -----------------------------------------------------------------------


class RecordWriter(logging.Handler):
    """Hands each logging record, formatted as one or more lines, to write(): the supervisor's
    pipe in a forked child, the collector itself with the solo pool."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        super().__init__()
        self.write = write
        self.setFormatter(logging.Formatter(RECORD_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write((self.format(record) + "\n").encode("utf-8", "backslashreplace"))
        except Exception:
            self.handleError(record)


def fd_writer(fd: int) -> Callable[[bytes], None]:
    """Return a function writing all of its bytes to fd."""

    def write(data: bytes) -> None:
        while data:
            data = data[os.write(fd, data) :]

    return write


class ChildOutput:
    """In a forked child: file descriptors 1 and 2 and the log pipe lead to the supervisor.

    A child runs many tasks on the same pipes, so before each task it writes the task's marker
    (worker/pipeline.py) on each of them; the supervisor gives the bytes after a marker to that
    task. The log pipe gets its marker only if the task logs something. Taskmill's own logging
    keeps going to the worker's console: only what the task writes is captured, and its logging
    records once (by RecordWriter), not twice.
    """

    def __init__(self, stdout_fd: int, stderr_fd: int, log_fd: int, nonce: bytes) -> None:
        self.nonce = nonce
        self._console = (os.dup(1), os.dup(2))
        console = os.fdopen(os.dup(2), "w", buffering=1, errors="backslashreplace")
        for handler in _stream_handlers():
            if handler.stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
                handler.setStream(console)
        # Kept open: fds 1 and 2 leave the pipes while finished tasks are announced.
        self._pipes = (stdout_fd, stderr_fd)
        self._point_at(self._pipes)
        for stream in (sys.stdout, sys.stderr):
            # Line by line, so a kill loses at most the line being written.
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(line_buffering=True)
        self._write_log = fd_writer(log_fd)
        self._log_marker: bytes | None = None
        self.records = RecordWriter(self._write_record)

    def begin_task(self, seq: int) -> None:
        """Mark the pipes: what follows is task seq's output."""
        mark = marker(self.nonce, seq)
        # Shorter than PIPE_BUF: one write each, never interleaved with another writer's.
        os.write(1, mark)
        os.write(2, mark)
        self._log_marker = mark

    def _write_record(self, data: bytes) -> None:
        if self._log_marker is not None:
            data, self._log_marker = self._log_marker + data, None
        self._write_log(data)

    @contextlib.contextmanager
    def to_console(self) -> Iterator[None]:
        """Point fds 1 and 2 at the worker's console meanwhile: what runs between tasks (the
        task_finished receivers) is no task's output."""
        _flush_std_streams()
        self._point_at(self._console)
        try:
            yield
        finally:
            _flush_std_streams()
            self._point_at(self._pipes)

    @staticmethod
    def _point_at(fds: tuple[int, int]) -> None:
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _stream_handlers() -> Iterator[logging.StreamHandler[io.TextIOWrapper]]:
    loggers = [logging.getLogger()] + [
        found
        for found in logging.Logger.manager.loggerDict.values()
        if isinstance(found, logging.Logger)
    ]
    for found in loggers:
        for handler in found.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            ):
                yield handler


@contextlib.contextmanager
def capturing_records(handler: logging.Handler, level: int) -> Iterator[None]:
    """Send logging records at `level` and above to handler while the task runs."""
    root = logging.getLogger()
    previous = root.level
    handler.setLevel(level)
    root.addHandler(handler)
    # Loggers without a level of their own inherit the root's: lower it for the task only.
    if root.level > level:
        root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        # Only if lowered: setLevel() clears the level cache of every logger in the process.
        if root.level != previous:
            root.setLevel(previous)
        _flush_std_streams()


# -- In the worker's own process (solo pool) -------------------------------------------------


class _CollectorStream(io.TextIOBase):
    def __init__(self, feed: Callable[[bytes], None]) -> None:
        self._feed = feed

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._feed(text.encode("utf-8", "backslashreplace"))
        return len(text)


@contextlib.contextmanager
def capturing_in_process(collector: OutputCollector, level: int) -> Iterator[None]:
    """Capture a task running in this very process (solo pool) into collector."""
    stdout = _CollectorStream(lambda data: collector.feed(LogStream.STDOUT, data))
    stderr = _CollectorStream(lambda data: collector.feed(LogStream.STDERR, data))
    with (
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
        capturing_records(RecordWriter(lambda data: collector.feed(LogStream.LOG, data)), level),
    ):
        yield
