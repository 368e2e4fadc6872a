"""Sizes for --max-memory-per-child, and reading a process's resident memory."""

import os

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
