"""Huey, on SQLite or Redis (BENCH_HUEY_STORAGE), run by its own `huey_consumer` with
`-w N -k process` (N worker processes). Default settings otherwise: SqliteHuey's WAL
journal and the consumer's polling (-d 0.1, backing off to 10 s when idle); RedisHuey's
blocking pop. Huey has no bulk enqueue."""

import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey

from .harness import record_mark
from .measure import Peer

STORAGE = os.environ.get("BENCH_HUEY_STORAGE", "sqlite")
NAME = os.environ.get("BENCH_PEER_NAME", "bench")
WORK = Path(os.environ.get("BENCH_PEER_WORK", "."))
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _make_huey() -> Huey:
    if STORAGE == "redis":
        return RedisHuey(name=NAME, host=REDIS_HOST, port=REDIS_PORT)
    if STORAGE == "sqlite":
        return SqliteHuey(name=NAME, filename=str(WORK / "huey.sqlite3"))
    raise ValueError(f"BENCH_HUEY_STORAGE={STORAGE!r}; use sqlite or redis")


huey = _make_huey()


@huey.task()
def noop(tag: str) -> None:
    started = time.time()
    record_mark(tag, started)


class HueyPeer(Peer):
    def __init__(self) -> None:
        self.name = f"huey-{STORAGE}"
        self.versions = {"huey": version("huey")}
        if STORAGE == "redis":
            self.versions["redis-py"] = version("redis")
        self.settings = "huey_consumer -w N -k process; storage defaults"

    def enqueue(self, tag: str) -> None:
        noop(tag)

    def flush(self) -> None:
        huey.flush()

    def worker_command(self, concurrency: int) -> list[str]:
        consumer = Path(sys.executable).parent / "huey_consumer"
        return [
            str(consumer),
            "bench.peers.huey_peer.huey",
            "-w",
            str(concurrency),
            "-k",
            "process",
        ]

    def worker_env(self) -> dict[str, str]:
        return {"BENCH_HUEY_STORAGE": STORAGE}

    def close(self) -> None:
        huey.flush()


PEER = HueyPeer
