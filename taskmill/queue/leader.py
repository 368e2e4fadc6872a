"""The leader lease: one worker per backend at a time runs the scheduler and the pruner.

A row in the Leadership table, taken and renewed with a compare-and-set on the database's
clock: a worker may take it when it is free or expired, and renew it while it is its own. A
leader killed with -9 stops renewing and is replaced once the lease expires. Leading is an
optimisation; exactly-once enqueueing does not depend on it (see scheduler.py).
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from datetime import timedelta

from django.db import IntegrityError, connections, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.expressions import CombinedExpression

from ..models import Leadership
from .clock import DatabaseNow

logger = logging.getLogger(__name__)


class LeaderLease:
    """One worker's claim on the leadership called `name`."""

    def __init__(self, *, database_alias: str, name: str, worker_id: str, seconds: float):
        self.database_alias = database_alias
        self.name = name
        self.worker_id = worker_id
        self.seconds = seconds
        self.term: int | None = None

    def acquire_or_renew(self) -> bool:
        """Take the lease if it is free or expired, or extend it if it is ours; return whether
        this worker now leads."""
        until = DatabaseNow() + Value(timedelta(seconds=self.seconds))
        mine = Q(worker_id=self.worker_id)
        updated = (
            Leadership.objects.using(self.database_alias)
            .filter(Q(name=self.name) & (mine | Q(expires_at__lt=DatabaseNow())))
            .update(
                expires_at=until,
                # A new term each time the leader changes. Before worker_id: MySQL evaluates
                # SET left to right, with the values already assigned.
                term=Case(When(mine, then=F("term")), default=F("term") + 1),
                worker_id=self.worker_id,
            )
        )
        leads = bool(updated) or self._create(until)
        self._note(leads)
        return leads

    def _create(self, until: CombinedExpression) -> bool:
        if Leadership.objects.using(self.database_alias).filter(name=self.name).exists():
            # Held by another worker: the INSERT could only fail, and each failure is an
            # ERROR line in the server's log, from every follower at every election.
            return False
        # One INSERT, committed by the server as it runs, never a transaction of its own: a
        # worker stalled between its INSERT and its COMMIT (SIGSTOP, swap, a frozen VM) would
        # keep the new row locked, and every other worker's INSERT of the name would wait for
        # it, each one's whole loop (heartbeats, rescues) stopped with it. Only inside a
        # caller's transaction does it take a savepoint, so the IntegrityError can't break it.
        in_transaction = connections[self.database_alias].in_atomic_block
        try:
            with transaction.atomic(using=self.database_alias) if in_transaction else nullcontext():
                Leadership.objects.using(self.database_alias).create(
                    name=self.name, worker_id=self.worker_id, expires_at=until, term=1
                )
        except IntegrityError:
            return False  # another worker created it first
        return True

    def _note(self, leads: bool) -> None:
        if leads and self.term is None:
            self.term = (
                Leadership.objects.using(self.database_alias)
                .values_list("term", flat=True)
                .get(name=self.name)
            )
            logger.info(
                "became leader leadership=%s worker_id=%s term=%s",
                self.name,
                self.worker_id,
                self.term,
            )
        elif not leads and self.term is not None:
            logger.warning("lost leadership leadership=%s worker_id=%s", self.name, self.worker_id)
            self.term = None

    def release(self) -> None:
        """Give the lease up (graceful shutdown), so another worker takes over at once."""
        if self.term is None:
            return
        Leadership.objects.using(self.database_alias).filter(
            name=self.name, worker_id=self.worker_id
        ).update(expires_at=DatabaseNow() - Value(timedelta(seconds=1)))
        logger.info("gave up leadership leadership=%s worker_id=%s", self.name, self.worker_id)
        self.term = None
