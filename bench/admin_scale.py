"""How fast the task admin's list loads over a table of a million finished tasks.

`python -m bench.admin_scale [--database postgresql] [--rows 1000000] [--repeats 5]`

Creates a fresh database, fills taskmill_taskrecord with finished rows (PostgreSQL: one
INSERT ... SELECT over generate_series; others: bulk_create in batches), then times the
admin's task list through Django's test client: plain, filtered by state, by task, by
enqueue date, searched by name, and one task's page. Prints the median of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from .databases import VENDORS, fresh_database

if TYPE_CHECKING:
    from django.test import Client

BATCH: Final = 10_000
TASK_PATHS: Final = 20  # distinct task paths among the rows
PAGES: Final = {
    "list, newest first": {},
    "list, state=failed": {"state__exact": "failed"},
    "list, one task": {"task": "bench.tasks.task_7"},
    "list, enqueued in the last hour": {"enqueued": "hour"},
    "list, search by name": {"q": "task_7"},
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.admin_scale", description=__doc__)
    parser.add_argument("--database", choices=VENDORS, default="postgresql")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args(argv)
    with fresh_database(options.database) as database:
        os.environ.update(
            BENCH_DB_VENDOR=database.vendor,
            BENCH_DB_NAME=database.name,
            DJANGO_SETTINGS_MODULE="bench.admin_settings",
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        fill(database.vendor, options.rows)
        write(
            f"{database.server_version}: {options.rows:,} rows in "
            f"{time.perf_counter() - started:.0f} s"
        )
        for label, seconds in measure(options.repeats):
            write(f"{label:<40} {seconds * 1000:8.1f} ms (median of {options.repeats})")
    return 0


def fill(vendor: str, rows: int) -> None:
    from django.db import connection

    if vendor == "postgresql":
        # One statement the server runs by itself: minutes of bulk_create become seconds.
        with connection.cursor() as cursor:
            cursor.execute(INSERT_SERIES, [TASK_PATHS, rows])
            cursor.execute("ANALYZE taskmill_taskrecord")
        return
    fill_in_batches(rows)


INSERT_SERIES: Final = """
INSERT INTO taskmill_taskrecord (
    id, backend, task_path, queue_name, priority, state, args, kwargs, options,
    enqueued_at, run_after, started_at, last_attempted_at, finished_at,
    attempts, worker_ids, errors, handed_back, has_dependants
)
SELECT
    gen_random_uuid(), 'default', 'bench.tasks.task_' || (i %% %s), 'default', 0,
    CASE WHEN i %% 50 = 0 THEN 'failed' ELSE 'succeeded' END, '[]', '{}', '{}',
    at, at, at + interval '1 second', at + interval '1 second', at + interval '2 seconds',
    1, '["bench"]', '[]', '[]', false
FROM generate_series(1, %s) AS i, LATERAL (SELECT now() - i * interval '1 second' AS at) t
"""


def fill_in_batches(rows: int) -> None:
    from django.utils import timezone

    from taskmill.models import TaskRecord

    now = timezone.now()
    for start in range(0, rows, BATCH):
        batch = []
        for i in range(start, min(start + BATCH, rows)):
            at = now - timedelta(seconds=i)
            batch.append(
                TaskRecord(
                    backend="default",
                    task_path=f"bench.tasks.task_{i % TASK_PATHS}",
                    queue_name="default",
                    state="failed" if i % 50 == 0 else "succeeded",
                    enqueued_at=at,
                    run_after=at,
                    started_at=at + timedelta(seconds=1),
                    finished_at=at + timedelta(seconds=2),
                    attempts=1,
                    worker_ids=["bench"],
                )
            )
        TaskRecord.objects.bulk_create(batch)


def measure(repeats: int) -> list[tuple[str, float]]:
    from django.contrib.auth.models import User
    from django.test import Client

    from taskmill.models import TaskRecord

    client = Client()
    client.force_login(User.objects.create_superuser("bench", "bench@example.com", "bench"))
    url = "/admin/taskmill/taskrecord/"
    newest = TaskRecord.objects.order_by("-enqueued_at").values_list("id", flat=True)[0]
    pages = [(label, url, params) for label, params in PAGES.items()]
    pages.append(("one task's page", f"{url}{newest}/change/", {}))
    return [(label, timed(client, path, params, repeats)) for label, path, params in pages]


def timed(client: Client, path: str, params: dict[str, str], repeats: int) -> float:
    client.get(path, params)  # warm the caches once
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(path, params)
        samples.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{path} {params}: HTTP {response.status_code}")
    return statistics.median(samples)


def write(line: str) -> None:
    sys.stdout.write(line + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
