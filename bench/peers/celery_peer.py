"""Celery on a Redis broker, run by its own `celery worker -c N` (prefork pool, N child
processes). Default settings otherwise (early acknowledgement, prefetch multiplier 4). No
result backend: the task's completion is read from the bench's side channel (harness.py),
as Taskmill's is read from its row. Celery has no bulk enqueue (a group sends one message
per task)."""

import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

import redis
from celery import Celery

from .harness import record_mark
from .measure import Peer

QUEUE = os.environ.get("BENCH_PEER_NAME", "bench")
BROKER = "redis://127.0.0.1:6379/0"

app = Celery("bench", broker=BROKER)
app.conf.update(
    task_default_queue=QUEUE,  # a queue of the run's own, on a Redis others may share
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop(tag: str) -> None:
    started = time.time()
    record_mark(tag, started)


class CeleryPeer(Peer):
    def __init__(self) -> None:
        self.name = "celery-redis"
        self.versions = {
            "celery": version("celery"),
            "kombu": version("kombu"),
            "redis-py": version("redis"),
        }
        self.settings = "celery worker -c N (prefork); Redis broker, no result backend"
        self.redis = redis.Redis.from_url(BROKER)

    def enqueue(self, tag: str) -> None:
        noop.delay(tag)

    def flush(self) -> None:
        app.control.purge()

    def worker_command(self, concurrency: int) -> list[str]:
        celery = Path(sys.executable).parent / "celery"
        return [
            str(celery), "-A", "bench.peers.celery_peer", "worker",
            "-c", str(concurrency), "-Q", QUEUE, "--loglevel", "WARNING",
        ]  # fmt: skip

    def close(self) -> None:
        app.control.purge()
        # kombu's bookkeeping keys for the queue (bindings), so nothing of the run is left.
        for key in self.redis.scan_iter(match=f"*{QUEUE}*"):
            self.redis.delete(key)
        self.redis.close()


PEER = CeleryPeer
