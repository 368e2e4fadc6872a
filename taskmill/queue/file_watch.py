"""FileWatch: a file descriptor that becomes readable when a file is written (Linux inotify).

The SQLite waiter sleeps on it instead of checking for commits every 25 ms: every commit
writes the database's WAL file, so an idle worker wakes when, and only when, something was
written. Python has no inotify binding of its own; these are the three libc calls it takes.
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import Final

from ..libc import linux_libc

IN_MODIFY: Final = 0x002
IN_DELETE_SELF: Final = 0x400
IN_MOVE_SELF: Final = 0x800
IN_IGNORED: Final = 0x8000  # the watch is gone (the file was deleted or moved)
_EVENT_HEADER: Final = struct.Struct("iIII")  # wd, mask, cookie, len (then len name bytes)


class FileWatch:
    """Watch one file for writes; open() returns None where inotify can't be had."""

    def __init__(self, path: str, libc: ctypes.CDLL, fd: int) -> None:
        self.path = path
        self._libc = libc
        self._fd = fd
        self._watching = False
        self.rearm()

    @classmethod
    def open(cls, path: str) -> FileWatch | None:
        libc = linux_libc()
        if libc is None:
            return None
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return None  # out of inotify instances (fs.inotify.max_user_instances)
        return cls(path, libc, fd)

    @property
    def watching(self) -> bool:
        """Whether writes to the file wake the descriptor now."""
        return self._watching

    def fileno(self) -> int:
        return self._fd

    def rearm(self) -> None:
        """Watch the file again if the watch was lost (the file deleted, moved, not there)."""
        if self._watching:
            return
        watch = self._libc.inotify_add_watch(
            self._fd, os.fsencode(self.path), IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF
        )
        self._watching = watch >= 0

    def drain(self) -> bool:
        """Consume the pending events; note a lost watch, for rearm(). Return whether there
        were any."""
        seen = False
        while True:
            try:
                data = os.read(self._fd, 4096)
            except BlockingIOError:
                return seen
            seen = True
            offset = 0
            while offset < len(data):
                _, mask, _, name_length = _EVENT_HEADER.unpack_from(data, offset)
                if mask & IN_IGNORED:
                    self._watching = False
                offset += _EVENT_HEADER.size + name_length

    def close(self) -> None:
        os.close(self._fd)
