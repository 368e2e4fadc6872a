"""PostgreSQL queue.

Quirks handled:
- NOTIFY is sent inside the enqueuing transaction, so PostgreSQL delivers it on commit and
  never for a rolled-back enqueue; identical notifications in one transaction are folded.
- Notifications don't reach workers behind PgBouncer in transaction mode: polling remains.
"""

from collections.abc import Iterable
from typing import Final

from .base import Queue

CHANNEL: Final = "taskmill"


class PostgresQueue(Queue):
    def notify(self, queue_names: Iterable[str]) -> None:
        names = sorted(set(queue_names))
        if not names:
            return
        with self.connection.cursor() as cursor:
            # One NOTIFY per queue; the payload is a queue name, bound as a parameter.
            for name in names:
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, name])
