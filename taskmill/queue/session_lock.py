"""SessionLock: a named lock held for as long as one database session (or, on SQLite, one
open file) lives, so the database or the OS frees it when its holder dies, even by SIGKILL.

Each dialect implements it with what it has: an advisory lock (PostgreSQL), GET_LOCK
(MariaDB/MySQL), flock on a file beside the database (SQLite).
"""

from abc import ABC, abstractmethod


class SessionLock(ABC):
    """One process's handle on a named lock; not shared between threads."""

    @abstractmethod
    def try_acquire(self) -> bool:
        """Take the lock without waiting; return False if someone else holds it.

        Raise a QueueError (DatabaseUnavailable) if the database can't be reached.
        """

    @abstractmethod
    def is_held(self) -> bool:
        """Return True if this handle still holds the lock (its session is alive)."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock up (a no-op when not held)."""
