"""How many tasks a worker claims ahead of its free children: a fixed --prefetch, or (the
default) enough to keep its children busy for a short while, from how long tasks take.

Claiming ahead lets a child that finishes start its next task without a database round trip,
and lets the supervisor claim and record in batches. Short tasks want many in hand; long ones
want few, since a task claimed ahead is one another worker can't take.
"""

from dataclasses import dataclass
from typing import Final

# Work kept in hand per child while the queue is busy, in seconds of measured task time.
CLAIM_AHEAD_SECONDS: Final = 0.1
# The most an adaptive worker claims ahead, per child.
MAX_AHEAD_PER_CHILD: Final = 50
# Weight of the newest task's duration in the running mean.
SMOOTHING: Final = 0.1


@dataclass(eq=False)
class ClaimAhead:
    """The claim-ahead target: fixed when `fixed` is set, else adapted to task durations."""

    concurrency: int
    fixed: int | None = None
    mean_seconds: float | None = None

    def observe(self, seconds: float) -> None:
        """Account for one task that ran for this long (as its child measured it)."""
        if self.mean_seconds is None:
            self.mean_seconds = seconds
        else:
            self.mean_seconds += SMOOTHING * (seconds - self.mean_seconds)

    @property
    def target(self) -> int:
        """How many claimed tasks to hold beyond those the free children take."""
        if self.fixed is not None:
            return self.fixed
        if self.mean_seconds is None:
            return self.concurrency
        per_child = int(CLAIM_AHEAD_SECONDS / max(self.mean_seconds, 1e-6))
        return self.concurrency * max(1, min(per_child, MAX_AHEAD_PER_CHILD))

    def should_refill(self, in_hand: int) -> bool:
        """Whether to claim ahead now: only once half of what is in hand was used, so a
        busy worker claims (and the database works) in batches rather than one by one."""
        return in_hand <= self.target // 2
