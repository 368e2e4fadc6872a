"""Task result ids: UUID version 7, so ids sort by creation time (RFC 9562)."""

import os
import time
import uuid


def new_task_id() -> uuid.UUID:
    """Return a new time-ordered UUID (version 7)."""
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80 | rand & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
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
