"""When a worker claims next: at once while claims find work; backing off from MIN_POLL to
POLL_INTERVAL while they find none, after looking often for a while where nothing pushes news
of new work; and when a task it knows of falls due (a retry it wrote, or one announced as due
later), whatever the back-off.
"""

import bisect
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

MIN_POLL: Final = 0.05
# Without a pushed wake-up (MariaDB/MySQL, or a lost LISTEN connection) the claim is the only
# way to learn of new work: tasks tend to come in runs, so for a while after its last claim
# that found work the worker looks this often, at the cost of an empty claim each time.
ACTIVE_POLL: Final = 0.02
ACTIVE_POLL_WINDOW: Final = 2.0
# A task known to fall due is claimed this long after its due time: the claim compares with
# the database's clock, which may run a little behind.
DUE_MARGIN: Final = 0.01
# Due times kept (the earliest); tasks due after those are found by polling.
MAX_DUE_TIMES: Final = 1000


@dataclass(eq=False)
class ClaimSchedule:
    """The time of a worker's next claim (monotonic), and what it is based on."""

    poll_interval: float  # TASKMILL["POLL_INTERVAL"]: the longest wait between claims
    next_at: float = 0.0
    poll_delay: float = MIN_POLL
    last_found_work_at: float = -ACTIVE_POLL_WINDOW
    # When tasks this worker knows of fall due: monotonic times, sorted.
    due_times: list[float] = field(default_factory=list)

    def is_due(self, now: float) -> bool:
        return now >= self.next_at

    def claim_now(self) -> None:
        self.next_at = time.monotonic()

    def after_claim(self, now: float, *, found_work: bool, news_pushed: bool) -> None:
        """Set the next claim after one made at `now`; `news_pushed`: whether the worker's
        waiter wakes it when work is enqueued."""
        del self.due_times[: bisect.bisect_right(self.due_times, now)]  # this claim looked
        if found_work:
            self.poll_delay = MIN_POLL
            self.last_found_work_at = now
            self.next_at = now
            return
        if now - self.last_found_work_at < ACTIVE_POLL_WINDOW and not news_pushed:
            delay = ACTIVE_POLL
        else:
            self.poll_delay = delay = min(self.poll_delay * 2, self.poll_interval)
        next_due = self.due_times[0] if self.due_times else math.inf
        self.next_at = min(now + min(delay, self.poll_interval), next_due)

    def expect_due(self, run_after: datetime) -> None:
        """Claim when a task falls due at run_after (DUE_MARGIN after it)."""
        self.expect_due_at(run_after.timestamp())

    def expect_due_at(self, unix_time: float) -> None:
        """Claim when a task falls due at this Unix time (DUE_MARGIN after it)."""
        due = time.monotonic() + (unix_time - time.time()) + DUE_MARGIN
        if len(self.due_times) >= MAX_DUE_TIMES and due >= self.due_times[-1]:
            return
        # Known already (a retry this worker wrote, then heard announced): one claim.
        index = bisect.bisect_left(self.due_times, due - DUE_MARGIN)
        if index < len(self.due_times) and self.due_times[index] <= due + DUE_MARGIN:
            return
        bisect.insort(self.due_times, due)
        del self.due_times[MAX_DUE_TIMES:]
        self.next_at = min(self.next_at, due)
