"""Put tasks through the queue the way a worker does, to leave dead row versions behind on
PostgreSQL, and read what the server's statistics and plans say about the task table."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from taskmill import enqueue_many
from taskmill.models import TaskRecord
from taskmill.queue import get_queue
from taskmill.queue.lease import ClaimRequest
from taskmill.states import State
from tests.testapp.tasks import noop

REQUEST = ClaimRequest(worker_id="churn", queue_names=("default",), limit=500, lease_seconds=60)


def claim_and_finish(limit: int = 500) -> list[Any]:
    """Claim up to `limit` ready tasks and mark them succeeded; return their ids."""
    request = ClaimRequest(
        worker_id=REQUEST.worker_id,
        queue_names=REQUEST.queue_names,
        limit=limit,
        lease_seconds=REQUEST.lease_seconds,
    )
    ids = [record.id for record in get_queue("default").claim(request)]
    TaskRecord.objects.filter(id__in=ids, state=State.RUNNING).update(
        state=State.SUCCEEDED, finished_at=timezone.now(), lease_owner=None
    )
    return ids


def churn(count: int) -> None:
    """Enqueue `count` no-op tasks, then claim and finish them all (two dead versions each)."""
    enqueue_many(noop, [((), {})] * count)
    while claim_and_finish():
        pass


def flush_statistics() -> None:
    """Make this connection's pending table statistics visible to every session now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")


def analyze() -> None:
    """Fresh planner statistics for the task table, as autovacuum's ANALYZE keeps them."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(TaskRecord._meta.db_table)}")


@contextmanager
def autovacuum_off() -> Iterator[None]:
    """Keep autovacuum off the task table: a vacuum it runs at the same moment would make the
    one under test skip the table (SKIP_LOCKED)."""
    table = connection.ops.quote_name(TaskRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")


def vacuum_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = %s",
            [TaskRecord._meta.db_table],
        )
        return int(cursor.fetchone()[0])


def claim_index_pages_read() -> int | None:
    """EXPLAIN ANALYZE the claim of one task (rolled back): the buffers its scan of the claim
    index touched, or None if the claim doesn't scan the claim index."""
    queue: Any = get_queue("default")
    params: dict[str, Any] = {
        "queues": ["default"],
        "limit": 1,
        "running": State.RUNNING.value,
        "worker_id": "explain",
        "lease": 30.0,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + queue._claim_sql, params)
        (plan,) = cursor.fetchone()
        transaction.set_rollback(True)
    if isinstance(plan, str):  # Django leaves json columns undecoded
        plan = json.loads(plan)
    node = _find_index_scan(plan[0]["Plan"], "taskmill_claim_idx")
    if node is None:
        return None
    return int(node["Shared Hit Blocks"]) + int(node["Shared Read Blocks"])


def _find_index_scan(node: dict[str, Any], index: str) -> dict[str, Any] | None:
    if node.get("Index Name") == index:
        return node
    for child in node.get("Plans", []):
        found = _find_index_scan(child, index)
        if found is not None:
            return found
    return None
