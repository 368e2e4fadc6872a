"""A paginator for tables of millions of rows: it counts at most CAP rows, never the table.

Django's paginator runs `SELECT COUNT(*)` over the whole filtered queryset on every page; on a
table of a million finished tasks that is the slow part of the page. Here the count is taken
over a LIMITed subquery, so it costs at most CAP index entries whatever the table's size.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Final

from django.core.paginator import Paginator
from django.db.models import QuerySet

# Past this many matching rows the list says "10,000+" and pages stop at CAP / per_page.
CAP: Final = 10_000


class CappedPaginator(Paginator):  # type: ignore[type-arg]  # generic only in the stubs
    """A Paginator whose count stops at `cap`; `is_capped` tells whether more rows match."""

    cap = CAP
    is_capped = False

    @cached_property
    def count(self) -> int:
        # COUNT(*) over (SELECT ... LIMIT cap + 1): bounded on every database.
        rows: QuerySet[Any] = self.object_list  # type: ignore[assignment]  # the admin passes a QuerySet
        counted = rows[: self.cap + 1].count()
        self.is_capped = counted > self.cap
        return min(counted, self.cap)
