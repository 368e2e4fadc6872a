"""Task result ids: UUID version 7, so ids sort by creation time (RFC 9562).

Within one millisecond, the 12 bits after the timestamp are a counter (RFC 9562 section
6.2, method 1), so ids made by one process in the same millisecond still sort in order.
"""

import os
import struct
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
    return [uuid.UUID(int=value) for value in _uuid7_values(count)]


def new_task_hexes(count: int) -> list[str]:
    """Return `count` new ids as new_task_ids() makes them, each as its 32 hex digits (the
    UUID's .hex): a bulk enqueue stores and shows them as text, and building a UUID object
    only to write it out again cost more than the rest of making the id."""
    return [f"{value:032x}" for value in _uuid7_values(count)]


def dashed(hex_id: str) -> str:
    """Return the canonical form of an id given as 32 hex digits, as str(UUID) writes it."""
    return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"


def _uuid7_values(count: int) -> list[int]:
    # One read of the random source for all of them, split in one call: a system call per id
    # costs more than the rest of making it.
    randomness = struct.unpack(f">{count}Q", os.urandom(8 * count))
    return [
        _uuid7_value(unix_ms, counter, random_bits)
        for (unix_ms, counter), random_bits in zip(_stamps.take(count), randomness, strict=True)
    ]


def _uuid7(unix_ms: int, counter: int, random_bytes: bytes) -> uuid.UUID:
    return uuid.UUID(int=_uuid7_value(unix_ms, counter, int.from_bytes(random_bytes, "big")))


def _uuid7_value(unix_ms: int, counter: int, random_bits: int) -> int:
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= counter << 64
    value |= 0x2 << 62  # RFC 4122 variant
    return value | (random_bits & ((1 << 62) - 1))


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
