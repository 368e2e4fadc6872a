"""Deleting finished task records in small batches: each batch is its own short transaction,
so pruning millions of rows never holds a long lock."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from django.db import transaction

from ..models import TaskRecord, TaskRecordQuerySet
from ..states import FINISHED_STATES, State
from .clock import DatabaseNow

BATCH_SIZE: Final = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """Which finished records: past their expiry (finished_before None), or finished before a
    time; optionally only some states."""

    finished_before: datetime | None = None
    states: Collection[State] = FINISHED_STATES


def selected(database_alias: str, selection: Selection) -> TaskRecordQuerySet:
    records = TaskRecord.objects.using(database_alias).filter(
        state__in=[state for state in selection.states if state in FINISHED_STATES]
    )
    if selection.finished_before is None:
        return records.filter(expires_at__lt=DatabaseNow())
    return records.filter(finished_at__lt=selection.finished_before)


def count_by_state(database_alias: str, selection: Selection) -> dict[str, int]:
    """Return how many records the selection holds, by state."""
    rows = selected(database_alias, selection).values_list("state", flat=True)
    return dict(Counter(rows))


def delete_batches(
    database_alias: str,
    selection: Selection,
    *,
    batch_size: int = BATCH_SIZE,
    time_budget: float | None = None,
) -> tuple[dict[str, int], bool]:
    """Delete the selected records, batch_size at a time; stop after time_budget seconds.

    Return the counts deleted by state, and whether all were deleted (False: more remain).
    """
    deleted: Counter[str] = Counter()
    started = time.monotonic()
    while True:
        with transaction.atomic(using=database_alias):
            batch = list(
                selected(database_alias, selection)
                .order_by("expires_at" if selection.finished_before is None else "finished_at")
                .values_list("id", "state")[:batch_size]
            )
            if batch:
                # Log chunks and dependency links go with their task (ON DELETE CASCADE in
                # the ORM); a retry's link to its original is set to NULL.
                TaskRecord.objects.using(database_alias).filter(
                    id__in=[task_id for task_id, _ in batch]
                ).delete()
        deleted.update(state for _, state in batch)
        if len(batch) < batch_size:
            return dict(deleted), True
        if time_budget is not None and time.monotonic() - started >= time_budget:
            return dict(deleted), False
