"""FileWatch: inotify on one file, the SQLite waiter's wake-up (Linux only)."""

import select
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskmill.queue.file_watch import FileWatch

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def _readable(watch: FileWatch, timeout: float) -> bool:
    return bool(select.select([watch.fileno()], [], [], timeout)[0])


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, FileWatch]]:
    path = tmp_path / "db.sqlite3-wal"
    path.write_bytes(b"")
    watch = FileWatch.open(str(path))
    assert watch is not None
    yield path, watch
    watch.close()


def test_a_write_makes_it_readable_and_drain_consumes_it(
    watched: tuple[Path, FileWatch],
) -> None:
    path, watch = watched
    assert watch.watching
    assert not _readable(watch, 0)

    with path.open("ab") as file:
        file.write(b"frame")

    assert _readable(watch, 10)
    watch.drain()
    assert not _readable(watch, 0)


def test_a_deleted_file_loses_the_watch_and_rearm_takes_the_new_one(
    watched: tuple[Path, FileWatch],
) -> None:
    path, watch = watched
    path.unlink()
    assert _readable(watch, 10)
    watch.drain()
    assert not watch.watching

    path.write_bytes(b"")
    watch.rearm()
    watch.drain()  # the write above may have raced the watch
    with path.open("ab") as file:
        file.write(b"frame")

    assert watch.watching
    assert _readable(watch, 10)


def test_a_file_not_there_yet_is_not_watched_until_rearmed(tmp_path: Path) -> None:
    path = tmp_path / "later-wal"
    watch = FileWatch.open(str(path))
    assert watch is not None
    try:
        assert not watch.watching
        watch.rearm()
        assert not watch.watching
        path.write_bytes(b"")
        watch.rearm()
        assert watch.watching
    finally:
        watch.close()
