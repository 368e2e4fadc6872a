"""Sizes of the chaos tests: bounded in `make test`, full in `make chaos` (TASKMILL_CHAOS=long)."""

import os

import pytest

LONG = os.environ.get("TASKMILL_CHAOS", "") == "long"

# nodeid and the figures that test reported, in the order the tests finished.
type Figures = dict[str, object]
FIGURES = pytest.StashKey[list[tuple[str, Figures]]]()


def scaled[T: (int, float)](bounded: T, long: T) -> T:
    """Return `long` under `make chaos`, else `bounded`."""
    return long if LONG else bounded
