"""Checks of the bookkeeping a TaskRecord row stores as JSON (options, errors, worker ids).

Rows written by hand or by a careless migration can hold anything JSON can. The worker reads
these columns itself, outside any task, so it reads them only through here: what is usable is
kept, the rest is named in a problem, and the row fails alone instead of stopping the worker.
Pure: no database access.
"""

from collections.abc import Callable
from typing import Any, Final

from .codec import UndecodableJSON

type Check = Callable[[object], bool]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(value: object) -> bool:
    return _number(value) and value > 0  # type: ignore[operator]  # _number narrows it


def _optional_positive(value: object) -> bool:
    return value is None or _positive(value)


def _delay(value: object) -> bool:
    return value is None or isinstance(value, str) or (_number(value) and value >= 0)  # type: ignore[operator]  # _number narrows it


def _whole(minimum: int) -> Check:
    return lambda value: _number(value) and isinstance(value, int) and value >= minimum


# What each stored option (task.StoredOptions) may hold, and how to say it.
OPTION_CHECKS: Final[dict[str, tuple[Check, str]]] = {
    "max_attempts": (_whole(1), "a whole number >= 1"),
    "retry_delay": (_delay, "seconds >= 0, a function's import path, or null"),
    "retry_max_delay": (_positive, "seconds > 0"),
    "retry_on": (
        lambda value: isinstance(value, list) and all(isinstance(p, str) for p in value),
        "a list of exception class paths",
    ),
    "timeout": (_optional_positive, "seconds > 0 or null"),
    "result_ttl": (_optional_positive, "seconds > 0 or null"),
    "unique": (lambda value: isinstance(value, bool | str), "true, false or a function's path"),
    "log_level": (_whole(0), "a logging level number"),
    "on_dependency_failure": (lambda value: value in ("cancel", "run"), '"cancel" or "run"'),
}


def read_options(stored: object) -> tuple[dict[str, Any], list[str]]:
    """Return the usable stored options (well-typed keys only) and a problem for each other one.

    {} is a row without options (every default); unknown keys are left out silently, so a row
    written by a newer Taskmill still runs.
    """
    if not isinstance(stored, dict):
        return {}, [f"options must be a JSON object, found {_shown(stored)}"]
    usable: dict[str, Any] = {}
    problems: list[str] = []
    for name, (check, expected) in OPTION_CHECKS.items():
        if name not in stored:
            if stored:
                problems.append(f"options[{name!r}] is missing")
        elif check(stored[name]):
            usable[name] = stored[name]
        else:
            problems.append(f"options[{name!r}] must be {expected}, found {_shown(stored[name])}")
    return usable, problems


def read_errors(stored: object) -> tuple[list[Any], list[str]]:
    """Return the well-formed stored error entries and a problem if any entry was not."""
    if not isinstance(stored, list):
        return [], [f"errors must be a JSON list, found {_shown(stored)}"]
    usable = [
        entry
        for entry in stored
        if isinstance(entry, dict)
        and isinstance(entry.get("exception_class_path"), str)
        and isinstance(entry.get("traceback"), str)
    ]
    if len(usable) < len(stored):
        return usable, ["errors holds entries that are not {exception_class_path, traceback}"]
    return usable, []


def read_worker_ids(stored: object) -> tuple[list[str], list[str]]:
    """Return the stored worker ids, and a problem if the column is not a list of strings."""
    if isinstance(stored, list) and all(isinstance(item, str) for item in stored):
        return stored, []
    return [], [f"worker_ids must be a JSON list of strings, found {_shown(stored)}"]


def row_problems(
    *,
    args: object,
    kwargs: object,
    option_problems: list[str],
    errors: object,
    worker_ids: object,
) -> list[str]:
    """Return what is wrong with a row's JSON columns, its options' problems (read_options)
    among them; [] when the worker can trust them."""
    return [
        *([] if isinstance(args, list) else [f"args must be a JSON list, found {_shown(args)}"]),
        *(
            []
            if isinstance(kwargs, dict)
            else [f"kwargs must be a JSON object, found {_shown(kwargs)}"]
        ),
        *option_problems,
        *read_errors(errors)[1],
        *read_worker_ids(worker_ids)[1],
    ]


def _shown(value: object) -> str:
    if isinstance(value, UndecodableJSON):
        return f"text that is not valid JSON ({value.error}): {value[:60]!r}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
