"""How long a finished task is kept: its result_ttl, or the global default; failures may be
kept longer (FAILED_RESULT_TTL). Pure."""

from .conf import get_settings
from .states import State


def seconds_to_keep(result_ttl: float | None, state: State | str) -> float:
    """Return how long to keep a task that finished in `state`."""
    settings = get_settings()
    keep = settings.DEFAULT_RESULT_TTL if result_ttl is None else float(result_ttl)
    if state != State.SUCCEEDED and settings.FAILED_RESULT_TTL is not None:
        keep = max(keep, settings.FAILED_RESULT_TTL)
    return keep
