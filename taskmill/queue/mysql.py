"""MariaDB/MySQL queue.

Quirks handled:
- No UPDATE ... RETURNING: a claim selects ids with FOR UPDATE SKIP LOCKED (MariaDB 10.6+,
  MySQL 8.0+), then updates them by id, in one transaction.
- Django runs MySQL connections at READ COMMITTED, so SKIP LOCKED doesn't take gap locks
  that would make concurrent claimers deadlock.
- Times come from UTC_TIMESTAMP(6): Django stores UTC, and CURRENT_TIMESTAMP would be in the
  session's time zone. A queue database with its own DATABASES TIME_ZONE is not supported.
- No partial indexes: indexes.PartialIndex falls back to full indexes led by the state column.
- No push notifications: workers poll with a short adaptive interval.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Func, JSONField, Value
from django.db.models.functions import Coalesce

from ..models import TaskRecord
from ..states import State
from .base import Queue
from .clock import DatabaseNow
from .lease import ClaimRequest


class MySQLQueue(Queue):
    def _claim(self, request: ClaimRequest) -> list[TaskRecord]:
        manager = TaskRecord.objects.using(self.database_alias)
        with transaction.atomic(using=self.database_alias):
            ids = list(
                manager.select_for_update(skip_locked=True)
                .filter(
                    state=State.READY,
                    queue_name__in=list(request.queue_names),
                    run_after__lte=DatabaseNow(),
                )
                .order_by("-priority", "run_after", "id")
                .values_list("id", flat=True)[: request.limit]
            )
            if ids:
                manager.filter(id__in=ids).update(
                    state=State.RUNNING,
                    attempts=F("attempts") + 1,
                    lease_owner=request.worker_id,
                    lease_expires_at=DatabaseNow()
                    + Value(timedelta(seconds=request.lease_seconds)),
                    started_at=Coalesce("started_at", Value(request.now)),
                    last_attempted_at=request.now,
                    worker_ids=Func(
                        F("worker_ids"),
                        Value("$"),
                        Value(request.worker_id),
                        function="JSON_ARRAY_APPEND",
                        output_field=JSONField(),
                    ),
                )
        if not ids:
            return []
        return list(manager.filter(id__in=ids))
