"""PgQueuer on PostgreSQL, run by its own `pgq run` (one asyncio process). Concurrency: its
no-op task is an `async def`, PgQueuer's standard form, run in the worker's event loop, not in
a child process as Taskmill's and the others' are; `--max-concurrent-tasks N` caps it at N
(which forces `--batch-size` to N // 2, PgQueuer requires max >= 2 x batch).
Drivers as its README shows them: asyncpg in the worker (with PsycopgDriver, pgq 1.6.0 picks
up a task only every ~1 s here), psycopg 3 (SyncQueries) to enqueue from synchronous code.
Default schema (`pgq install`, durable tables). Bulk enqueue: `enqueue()` given lists."""

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

import asyncpg
import psycopg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver, SyncPsycopgDriver
from pgqueuer.models import Job
from pgqueuer.queries import SyncQueries

from .harness import record_mark
from .measure import Peer

DSN = os.environ.get("BENCH_PEER_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
ENTRYPOINT = "noop"


@asynccontextmanager
async def create_pgqueuer() -> AsyncIterator[PgQueuer]:
    """The factory `pgq run bench.peers.pgqueuer_peer:create_pgqueuer` starts."""
    connection = await asyncpg.connect(DSN)
    try:
        pgq = PgQueuer(AsyncpgDriver(connection))

        @pgq.entrypoint(ENTRYPOINT)
        async def noop(job: Job) -> None:
            started = time.time()
            record_mark((job.payload or b"").decode(), started)

        yield pgq
    finally:
        await connection.close()


class PgQueuerPeer(Peer):
    def __init__(self) -> None:
        self.name = "pgqueuer-pg"
        self.versions = {
            "pgqueuer": version("pgqueuer"),
            "asyncpg": version("asyncpg"),
            "psycopg": version("psycopg"),
        }
        self.settings = "pgq run --max-concurrent-tasks N --batch-size N//2; asyncpg worker"
        self._pgq(["install"])
        self.connection = psycopg.connect(DSN, autocommit=True)
        self.queries = SyncQueries(SyncPsycopgDriver(self.connection))

    def _pgq(self, args: list[str]) -> None:
        pgq = Path(sys.executable).parent / "pgq"
        subprocess.run(  # noqa: S603 - PgQueuer's own CLI
            [str(pgq), "--pg-dsn", DSN, *args], check=True, capture_output=True, timeout=60
        )

    def enqueue(self, tag: str) -> None:
        self.queries.enqueue(ENTRYPOINT, tag.encode())

    def enqueue_bulk(self, tags: Sequence[str]) -> bool:
        self.queries.enqueue(
            [ENTRYPOINT] * len(tags), [tag.encode() for tag in tags], [0] * len(tags)
        )
        return True

    def flush(self) -> None:
        self.connection.execute("TRUNCATE pgqueuer, pgqueuer_log")

    def worker_command(self, concurrency: int) -> list[str]:
        pgq = Path(sys.executable).parent / "pgq"
        # (No --log-level: pgq 1.6.0's run fails on it, 'str' object has no attribute 'name'.)
        batch = max(1, concurrency // 2)
        return [
            str(pgq), "--pg-dsn", DSN, "run", "bench.peers.pgqueuer_peer:create_pgqueuer",
            "--max-concurrent-tasks", str(concurrency), "--batch-size", str(batch),
        ]  # fmt: skip

    def close(self) -> None:
        self.connection.close()


PEER = PgQueuerPeer
