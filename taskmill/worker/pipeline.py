"""Pipelining: a child holds a few dispatched tasks and runs them one after the other.

Three pieces make that safe. A Slot, shared memory made before the fork, says which task a
child last began, and lets the supervisor hold the child back before it begins another, so a
kill meant for one task never hits the next. Start-of-task markers, written by the child on
each output pipe, tell the supervisor whose output the bytes that follow are. Depth says how
many tasks a child may hold: one for long tasks, up to MAX_DEPTH for millisecond ones.
"""

import mmap
import multiprocessing
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

# A child holds at most about this much measured work beyond the task it runs: a slow task
# arriving among fast ones holds the few queued behind it back for no longer than that, on
# average, before they would have been run by this child anyway.
PIPELINE_SECONDS: Final = 0.05
MAX_DEPTH: Final = 16
# A task that runs this much longer than the depth allowed for gives back the tasks queued
# behind it, for other children, and its child gets no more until it is done: one slow task
# among fast ones holds the others back for a second at most.
STALLED_AFTER: Final = 1.0
# The supervisor waits this long for a slot's lock; a child holds it for a few instructions,
# so running out means the child died holding it (SIGKILL) and the slot no longer matters.
LOCK_TIMEOUT: Final = 1.0

# started_seq, wait_for (messages the child must have read), then the child's running totals of
# attempts run and seconds spent running them: a task's own duration, which the supervisor
# can't see (from its side a queued task's time includes its own turns).
_SLOT: Final = struct.Struct("qqqd")
# Long enough to tell apart from anything a task writes by chance; short enough to stay
# atomic in one pipe write.
_MARKER_HEAD: Final = b"\0tm:"
_MAX_MARKER: Final = 64


class Slot:
    """Which task a child is running, shared between the child and its supervisor.

    The child begins a task only when it has read every message the supervisor sent before
    holding it (wait_for): a hold and the message after it, such as a drop, can't be overtaken.
    """

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, _SLOT.size)  # anonymous and shared: survives the fork
        # A POSIX semaphore, also shared across the fork (the fork context unlinks its name).
        self._lock = multiprocessing.get_context("fork").Lock()

    def begin(self, seq: int, received: int) -> bool:
        """In the child: record seq as begun, unless held until more messages are read."""
        with self._lock:
            _, wait_for, runs, seconds = _SLOT.unpack_from(self._memory)
            if received < wait_for:
                return False
            _SLOT.pack_into(self._memory, 0, seq, wait_for, runs, seconds)
            return True

    def add_run(self, seconds: float) -> None:
        """In the child: count one more attempt run, that took this long."""
        with self._lock:
            started, wait_for, runs, total = _SLOT.unpack_from(self._memory)
            _SLOT.pack_into(self._memory, 0, started, wait_for, runs + 1, total + seconds)

    def run_totals(self) -> tuple[int, float]:
        """Attempts the child ran and the seconds they took, so far."""
        _, _, runs, seconds = _SLOT.unpack_from(self._memory)
        return int(runs), float(seconds)

    def hold(self, until_received: int) -> int | None:
        """In the supervisor: keep the child from beginning a task until it has read
        until_received messages; return the seq it last began (None: its lock is lost)."""
        if not self._lock.acquire(timeout=LOCK_TIMEOUT):
            return None
        try:
            started, wait_for, runs, seconds = _SLOT.unpack_from(self._memory)
            _SLOT.pack_into(self._memory, 0, started, max(wait_for, until_received), runs, seconds)
            return int(started)
        finally:
            self._lock.release()

    @property
    def started_seq(self) -> int:
        """The seq the child last began; read without the lock once the child is gone."""
        started, *_ = _SLOT.unpack_from(self._memory)
        return int(started)

    def close(self) -> None:
        self._memory.close()


def new_nonce() -> bytes:
    """A child's marker key: output of a task can't forge another task's marker."""
    return os.urandom(8).hex().encode()


def marker(nonce: bytes, seq: int) -> bytes:
    """The bytes a child writes on an output pipe before task seq begins."""
    return b"%s%s:%d\0" % (_MARKER_HEAD, nonce, seq)


class Splitter:
    """Splits one output pipe's byte stream at a child's markers, across reads."""

    def __init__(self, nonce: bytes) -> None:
        self._head = _MARKER_HEAD + nonce + b":"
        self._marker = re.compile(re.escape(self._head) + rb"(\d{1,18})\0")
        self._carry = b""
        self.owner: int | None = None  # seq of the task whose output comes next

    def split(self, data: bytes) -> Iterator[tuple[int | None, bytes]]:
        """Yield (seq of the task that wrote it, bytes); a marker cut by a read waits."""
        if self._carry:
            data, self._carry = self._carry + data, b""
        start = 0
        keep = len(data)
        if _MARKER_HEAD[:1] in data:  # most reads hold no marker: one scan in C
            for found in self._marker.finditer(data):
                if found.start() > start:
                    yield self.owner, data[start : found.start()]
                self.owner = int(found.group(1))
                start = found.end()
            keep = self._partial_marker_at_end(data, start)
        if keep > start:
            yield self.owner, data[start:keep]
        self._carry = data[keep:]

    def _partial_marker_at_end(self, data: bytes, start: int) -> int:
        """Where a marker that may continue in the next read begins; len(data) if none."""
        at = data.rfind(self._head[:1], max(start, len(data) - _MAX_MARKER))
        if at < 0:
            return len(data)
        tail = data[at:]
        if self._head.startswith(tail) or (
            tail.startswith(self._head) and tail[len(self._head) :].isdigit()
        ):
            return at
        return len(data)

    def flush(self) -> tuple[int | None, bytes]:
        """What is held back at the end of the stream: output, since no marker follows."""
        data, self._carry = self._carry, b""
        return self.owner, data


@dataclass(eq=False)
class Depth:
    """How many dispatched tasks a child may hold: fixed, or from the measured mean duration.

    Adaptive depth keeps tasks with a timeout alone in their child: their deadline is a sign
    they may run long, and a kill would also send the tasks behind them elsewhere.
    """

    fixed: int | None = None

    def of(self, mean_seconds: float | None) -> int:
        if self.fixed is not None:
            return self.fixed
        if mean_seconds is None:  # nothing measured yet: as if the tasks were long
            return 1
        return max(1, min(int(PIPELINE_SECONDS / max(mean_seconds, 1e-6)), MAX_DEPTH))

    @property
    def stalled_after(self) -> float | None:
        """Seconds after which a running task gives back those queued behind it (None: never,
        with a fixed depth)."""
        return None if self.fixed is not None else STALLED_AFTER

    def goes_alone(self, options: dict[str, object]) -> bool:
        """Whether a task with these options must be the only one its child holds."""
        return self.fixed is None and bool(options.get("timeout"))
