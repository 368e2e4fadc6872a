"""Recording outcomes: the fields an attempt's end writes, for one task or a batch of them.

The batch form exists for speed: a worker draining short tasks records every outcome of a
loop turn in one statement instead of one UPDATE (and one round trip) per task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from ..outcomes import Transition
from ..results import StoredError
from ..retention import seconds_to_keep
from .lease import Lease

# Rows per batched UPDATE: far below SQLite's bound-parameter limit (9 per row), and a
# statement text PostgreSQL parses quickly.
FINISH_BATCH_SIZE: Final = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Finish:
    """One attempt's end to record: under this lease, this transition."""

    lease: Lease
    transition: Transition
    prior_errors: list[StoredError]


def changes_for(finish: Finish, now: datetime) -> dict[str, Any]:
    """Return the fields finishing this attempt writes, by field name."""
    lease, transition = finish.lease, finish.transition
    errors = list(finish.prior_errors)
    if transition.error is not None:
        errors.append(
            StoredError(
                exception_class_path=transition.error.exception_class_path,
                traceback=transition.error.traceback,
                attempt=lease.attempt,
            )
        )
    changes: dict[str, Any] = {
        "state": transition.state,
        "errors": errors,
        "lease_owner": None,
        "lease_expires_at": None,
        "cancel_requested_at": None,
    }
    if transition.is_final:
        changes.update(
            finished_at=now,
            return_value=transition.return_value,
            unique_key=None,
            expires_at=now + timedelta(seconds=seconds_to_keep(lease.result_ttl, transition.state)),
        )
    else:
        changes["run_after"] = transition.run_after
    return changes


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalRow:
    """A final outcome ready for a batched UPDATE: the fence, then the values written."""

    lease: Lease
    changes: dict[str, Any]
