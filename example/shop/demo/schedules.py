"""The example's schedules during the demo: the runs the worker (as leader) enqueues for them,
told as they finish, and the schedule table as `manage.py taskmill schedule` prints it."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from uuid import UUID

from django.core.management import call_command
from django.utils import timezone

from taskmill.models import Leadership, TaskRecord, Worker
from taskmill.states import State

from .narrator import Narrator, short

PERIODIC: Final = "shop.tasks.check_payments"  # @periodic(every=5 s, start_now=True)
CRON: Final = "shop.tasks.expire_baskets"  # @cron("* * * * *")
PERIODIC_RUNS_EXPECTED: Final = 3
LEADERSHIP: Final = "leader:default"  # the lease of the default backend's scheduler


@dataclass(slots=True)
class ScheduleRuns:
    """The finished runs of one schedule since `since`, each told once."""

    name: str
    since: datetime
    narrator: Narrator
    told: set[UUID] = field(default_factory=set)
    succeeded: int = 0
    failed: int = 0

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    def ran(self, runs: int) -> bool:
        """Tell whether at least `runs` runs succeeded and none failed."""
        return self.succeeded >= runs and not self.failed

    def look(self) -> None:
        """Tell the runs that finished since the last look."""
        finished = (
            TaskRecord.objects.filter(
                schedule__name=self.name,
                enqueued_at__gte=self.since,
                state__in=[State.SUCCEEDED, State.FAILED, State.CANCELLED],
            )
            .exclude(id__in=self.told)
            .order_by("scheduled_for")
        )
        for record in finished:
            self.told.add(record.id)
            run = f"{self.short_name}() run due {record.scheduled_for:%X}"
            if record.state == State.SUCCEEDED:
                self.succeeded += 1
                self.narrator.event(
                    "⟳",
                    f"{run} → {short(record.return_value)} (run #{self.succeeded})",
                    self.narrator.style.SUCCESS,
                )
            else:
                self.failed += 1
                self.narrator.event("✗", f"{run}: {record.state}", self.narrator.style.ERROR)


def schedule_table() -> str:
    """Return what `manage.py taskmill schedule` prints."""
    out = io.StringIO()
    call_command("taskmill", "schedule", stdout=out)
    return out.getvalue().rstrip()


def leader_pid() -> int | None:
    """Return the pid of the worker leading the default backend (so running its scheduler),
    or None if no worker holds the lease."""
    leadership = Leadership.objects.filter(name=LEADERSHIP, expires_at__gt=timezone.now()).first()
    if leadership is None:
        return None
    return Worker.objects.filter(id=leadership.worker_id).values_list("pid", flat=True).first()
