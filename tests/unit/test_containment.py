"""Sizes for --max-memory-per-child, and reading a process's resident memory."""

import os
import subprocess
import sys

import pytest

from taskmill.worker.containment import (
    can_read_memory,
    over_memory_limit,
    parse_memory_size,
    resident_memory,
)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MiB", 512 * 1024**2),
        ("200MB", 200 * 1000**2),
        ("2GiB", 2 * 1024**3),
        ("1gb", 1000**3),
        ("300kib", 300 * 1024),
        ("64KB", 64_000),
        ("300000", 300_000 * 1024),  # a plain number counts KiB, as in Celery
        (" 256 MiB ", 256 * 1024**2),
    ],
)
def test_parse_memory_size__reads_units(text: str, size: int) -> None:
    assert parse_memory_size(text, "--max-memory-per-child") == size


@pytest.mark.parametrize("text", ["", "0", "0MiB", "1.5GiB", "-5MB", "12M", "512 mebibytes"])
def test_parse_memory_size__refuses_what_is_not_a_size_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"--max-memory-per-child .* e\.g\. 512MiB or 200MB"):
        parse_memory_size(text, "--max-memory-per-child")


@pytest.mark.skipif(not can_read_memory(), reason="no /proc to read memory from")
def test_resident_memory__reads_this_process_and_compares_with_a_limit() -> None:
    resident = resident_memory(os.getpid())
    assert resident is not None
    assert resident > 1024**2  # a Python interpreter holds more than 1 MiB
    assert (over_memory_limit(os.getpid(), 1024) or 0) > 1024
    assert over_memory_limit(os.getpid(), 1024**4) is None


def test_resident_memory__is_none_for_a_process_that_is_gone() -> None:
    assert resident_memory(2**22 + 1) is None  # above Linux's largest pid


# In a process of its own: end_descendants() kills every child of the process calling it.
END_DESCENDANTS_SCRIPT = """
import os, subprocess, sys, time
from taskmill.worker import containment
assert containment.end_descendants() == 0  # nothing started yet
sleeper = subprocess.Popen(["sleep", "60"])
finished = subprocess.Popen(["true"])
deadline = time.monotonic() + 10
while os.waitid(os.P_PID, finished.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
    assert time.monotonic() < deadline, "true did not exit"
    time.sleep(0.01)
print(containment.end_descendants())  # the sleeper killed; the exited one only reaped
try:
    os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG)
except ChildProcessError:
    print("no children left")
"""


@pytest.mark.skipif(not hasattr(os, "waitid"), reason="no waitid() here")
def test_end_descendants__kills_live_children_reaps_exited_ones_and_sees_none_after() -> None:
    done = subprocess.run(
        [sys.executable, "-c", END_DESCENDANTS_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["1", "no children left"]
