"""Task result ids: UUID version 7, so ids sort by creation time (RFC 9562).

Within one millisecond, the 12 bits after the timestamp are a counter (RFC 9562 section
6.2, method 1), so ids made by one process in the same millisecond still sort in order.
"""

import os
import threading
import time
import uuid


class _Stamps:
    """Millisecond timestamps with a counter, increasing within this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0

    def next(self) -> tuple[int, int]:
        with self._lock:
            return self._step()

    def take(self, count: int) -> list[tuple[int, int]]:
        """Return `count` stamps in order, as many calls of next() would."""
        with self._lock:
            return [self._step() for _ in range(count)]

    def _step(self) -> tuple[int, int]:
        unix_ms = time.time_ns() // 1_000_000
        if unix_ms > self._ms:
            self._ms = unix_ms
            # A random start leaves room to count up and hides how many ids came before.
            self._counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        else:
            self._counter += 1
            if self._counter > 0xFFF:  # 4,096 ids in one millisecond: borrow the next
                self._ms += 1
                self._counter = 0
        return self._ms, self._counter


_stamps = _Stamps()


def new_task_id() -> uuid.UUID:
    """Return a new time-ordered UUID (version 7)."""
    unix_ms, counter = _stamps.next()
    return _uuid7(unix_ms, counter, os.urandom(8))


def new_task_ids(count: int) -> list[uuid.UUID]:
    """Return `count` new ids in increasing order, as many calls of new_task_id() would."""
    # One read of the random source for all of them: a system call per id costs more than
    # the rest of making it.
    randomness = os.urandom(8 * count)
    return [
        _uuid7(unix_ms, counter, randomness[8 * index : 8 * index + 8])
        for index, (unix_ms, counter) in enumerate(_stamps.take(count))
    ]


def _uuid7(unix_ms: int, counter: int, random_bytes: bytes) -> uuid.UUID:
    rand_b = int.from_bytes(random_bytes, "big") & ((1 << 62) - 1)
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= counter << 64
    value |= 0x2 << 62  # RFC 4122 variant
    value |= rand_b
    return uuid.UUID(int=value)


def parse_task_id(value: object) -> uuid.UUID | None:
    """Return the UUID a result id names, or None if it isn't one."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
