"""The Guide runs the demo from start to end: prepare the database, enqueue the tour, start a
real worker, watch every result finish and the periodic schedule run, stop the worker, sum up,
and create the superuser to look around with."""

import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Model
from django.utils import timezone

import taskmill
from taskmill.conf import get_settings
from taskmill.models import TaskRecord, Worker

from ..models import Customer, Order
from .narrator import Narrator
from .schedules import (
    CRON,
    PERIODIC,
    PERIODIC_RUNS_EXPECTED,
    ScheduleRuns,
    leader_pid,
    schedule_table,
)
from .site import ensure_superuser, visit_lines
from .summary import HEADERS, STATUS_COLUMN, first_start, summary_rows
from .tour import Stop, enqueue_tour, problems_of
from .watcher import Watcher
from .worker import DemoWorker, running_worker

STOP_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    concurrency: int
    wait: float  # seconds the results get to finish


class Guide:
    """Walk through the tour, narrating; raise CommandError if anything went unexpectedly."""

    def __init__(self, narrator: Narrator, options: DemoOptions) -> None:
        self.narrator = narrator
        self.style = narrator.style
        self.options = options

    def run(self) -> None:
        """Run the demo from start to end."""
        self._introduce()
        self._prepare_database()
        customer = Customer.objects.create(name="Ada Lovelace", email="ada@example.com")
        stops = self._enqueue(customer)
        log_path = Path(tempfile.mkdtemp(prefix="taskmill-demo-")) / "worker.log"
        started = timezone.now()
        with running_worker(
            self._worker_command(), cwd=settings.BASE_DIR, log_path=log_path
        ) as worker:
            self._announce_worker(worker)
            watcher = Watcher(
                stops,
                self.narrator,
                periodic=ScheduleRuns(PERIODIC, started, self.narrator),
                periodic_runs=PERIODIC_RUNS_EXPECTED,
                others=[ScheduleRuns(CRON, started, self.narrator)],
            )
            all_finished = watcher.watch(worker, time.monotonic() + self.options.wait)
            self._show_schedules(worker)
            exit_code = self._stop_worker(worker, all_finished)
        self._summarise(stops, watcher)
        self._show_history(customer)
        problems = self._problems(stops, watcher, all_finished, exit_code)
        if problems:
            self._fail(problems, worker)
        self._conclude(worker)

    # -- Before the worker -------------------------------------------------------------------

    def _introduce(self) -> None:
        database = connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
        self.narrator.say(
            "Taskmill demo: background tasks for Django's Tasks framework, queued in this "
            "project's own database.",
            self.style.MIGRATE_HEADING,
        )
        self.narrator.say(f"Database: SQLite, {database}")

    def _prepare_database(self) -> None:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            self.narrator.say("Applying migrations…")
            call_command("migrate", interactive=False, verbosity=0)
        # Each run starts from an empty shop; results of other apps' tasks are left alone.
        deleted, _ = TaskRecord.objects.filter(task_path__startswith="shop.").delete()
        Customer.objects.all().delete()
        if deleted:
            self.narrator.say("Cleared the results and shop data of an earlier run.")
        self._warn_about_other_workers()

    def _warn_about_other_workers(self) -> None:
        alive_since = timezone.now() - timedelta(seconds=get_settings().LEASE_SECONDS)
        others = Worker.objects.filter(last_heartbeat_at__gte=alive_since)
        for other in others:
            self.narrator.say(
                f"Note: worker {other.id} (pid {other.pid}) also serves this database; it may "
                "run some of the tour.",
                self.style.WARNING,
            )

    def _enqueue(self, customer: Customer) -> list[Stop]:
        self.narrator.heading(
            "Enqueueing the tour with django.tasks (task.enqueue, .using(...), "
            "taskmill.enqueue_many):"
        )
        stops = enqueue_tour(customer)
        width = max(len(stop.label) for stop in stops)
        for stop in stops:
            self.narrator.item(stop.label, stop.shows, width)
        return stops

    # -- The worker --------------------------------------------------------------------------

    def _worker_command(self) -> list[str]:
        return [
            "manage.py",
            "taskmill",
            "worker",
            "--concurrency",
            str(self.options.concurrency),
            "--grace",
            "5",
        ]

    def _announce_worker(self, worker: DemoWorker) -> None:
        self.narrator.heading(f"Starting a worker: python {' '.join(self._worker_command())}")
        self.narrator.say(f"  pid {worker.pid}; its output goes to {worker.log_path}")
        self.narrator.heading(
            f"Watching the results (TaskResult.refresh(), for at most {self.options.wait:.0f} s):"
        )
        self.narrator.start_clock()

    def _show_schedules(self, worker: DemoWorker) -> None:
        self.narrator.heading(
            "Schedules (@periodic and @cron in shop/tasks.py), as `manage.py taskmill schedule` "
            "lists them:"
        )
        for line in schedule_table().splitlines():
            self.narrator.say(f"  {line}")
        leader = leader_pid()
        if leader == worker.pid:
            self.narrator.say(
                f"  The demo's worker (pid {leader}) leads: its scheduler enqueued the periodic "
                "runs above."
            )
        else:
            self.narrator.say(
                f"  Another worker (pid {leader}) leads and enqueued the periodic runs above.",
                self.style.WARNING,
            )
        self.narrator.say(
            "  The cron schedule is due at the start of each minute: this tour may end before "
            "its next run; under `make serve` it keeps running."
        )

    def _stop_worker(self, worker: DemoWorker, all_finished: bool) -> int | None:
        if all_finished:
            self.narrator.say()
            self.narrator.say(
                "Every result has finished and the periodic task ran at least "
                f"{PERIODIC_RUNS_EXPECTED} times. Stopping the worker with SIGTERM…"
            )
        code = worker.exit_code()
        if code is None:
            code = worker.stop(STOP_TIMEOUT)
        paint = self.style.SUCCESS if code == 0 else self.style.ERROR
        ended = "was killed" if code is None else f"exited with code {code}"
        self.narrator.say(f"The worker {ended}.", paint)
        return code

    # -- After the worker --------------------------------------------------------------------

    def _summarise(self, stops: list[Stop], watcher: Watcher) -> None:
        self.narrator.heading("Summary")
        for stop in stops:
            stop.result.refresh()  # as the worker left it
        self.narrator.table(
            HEADERS, summary_rows(stops, watcher.periodic), status_column=STATUS_COLUMN
        )
        self._show_start_order(stops)

    def _show_start_order(self, stops: list[Stop]) -> None:
        started = sorted(
            (stop for stop in stops if stop.result.started_at is not None),
            # One claim starts several tasks at the same time, highest priority first.
            key=lambda stop: (stop.result.started_at, -stop.result.task.priority),
        )
        first = [f"{s.label} (priority {s.result.task.priority})" for s in started[:2]]
        if first:
            self.narrator.say()
            self.narrator.say(f"  Claimed first: {', then '.join(first)}.")

    def _show_history(self, customer: Customer) -> None:
        self.narrator.heading("Per-object history (taskmill.history):")
        order = Order.objects.get(customer=customer)
        for instance in (customer, order):
            self.narrator.say(f"  {instance}: {history_line(instance)}")

    def _problems(
        self, stops: list[Stop], watcher: Watcher, all_finished: bool, exit_code: int | None
    ) -> list[str]:
        if not all_finished:
            late = ", ".join(stop.label for stop in watcher.unfinished())
            return [f"not finished within {self.options.wait:.0f} s: {late}"]
        first = first_start(stops)
        problems = [problem for stop in stops for problem in problems_of(stop, first)]
        problems.extend(watcher.problems())
        if exit_code != 0:
            problems.append(f"the worker exited with {exit_code}, expected 0")
        return problems

    def _fail(self, problems: list[str], worker: DemoWorker) -> None:
        self.narrator.heading(f"Worker output ({worker.log_path}):")
        self.narrator.say(worker.output().rstrip())
        self.narrator.heading("Not as expected:")
        for problem in problems:
            self.narrator.say(f"  ✗ {problem}", self.style.ERROR)
        raise CommandError(f"the demo found {len(problems)} problem(s); see above.")

    def _conclude(self, worker: DemoWorker) -> None:
        self.narrator.say()
        self.narrator.say("✓ Every task ended as the tour expects.", self.style.SUCCESS)
        self.narrator.say(f"  The worker's log, with the e-mails it sent: {worker.log_path}")
        created = ensure_superuser()
        self.narrator.heading(
            "Look around: `make serve` runs this site with a worker inside runserver, then open"
        )
        for line in visit_lines():
            self.narrator.say(line)
        if not created:
            self.narrator.say("  (that user already existed: its password was left as it was)")


def history_line(instance: Model) -> str:
    """Return "task: state, …" for the tasks run for instance, oldest first."""
    records = reversed(list(taskmill.history(instance)))
    return ", ".join(f"{r.task_path.rsplit('.', 1)[-1]} {r.state}" for r in records) or "—"
