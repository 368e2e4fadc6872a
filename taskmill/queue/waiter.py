"""What a worker sleeps on between claims; dialects that can push a wake-up subclass it."""


class Waiter:
    """Sleeps until work may be there: by default nothing wakes it but its timeout."""

    #: How often check() should be called while waiting, or None if it never needs calling.
    check_interval: float | None = None
    #: Whether news of work (an enqueue's commit) ends the sleep; a worker whose waiter
    #: doesn't push looks for work more often after finding some.
    pushes: bool = False

    def fileno(self) -> int | None:
        """A file descriptor that becomes readable on news, or None."""
        return None

    def forget_news(self) -> None:
        """Ignore what happened so far (the worker's own writes, just made)."""

    def check(self) -> bool:
        """Consume pending news; return True if work may have arrived.

        News of work due only later isn't: take_later() returns it.
        """
        return False

    def take_later(self) -> list[tuple[str, float]]:
        """Return and forget the news check() read of work due later: (queue name, due time
        as a Unix time), by default none."""
        return []

    def close(self) -> None:
        """Release what the waiter holds."""
