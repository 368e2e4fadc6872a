"""Taskmill's own settings (the TASKMILL dict), built and validated once.

Backend-specific values live in TASKS[alias]["OPTIONS"] and are validated by the backend.
"""

from dataclasses import dataclass, fields
from datetime import timedelta
from functools import cache
from typing import Any, Final

from django.conf import settings

from .exceptions import ConfigurationError
from .masking import name_words

SETTING_NAME: Final = "TASKMILL"


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskmillSettings:
    AUTOSTART: bool = False
    AUTOSTART_QUEUES: tuple[str, ...] | None = None
    AUTOSTART_CONCURRENCY: int = 2
    LEASE_SECONDS: float = 30.0
    HEARTBEAT_SECONDS: float = 5.0
    POLL_INTERVAL: float = 1.0
    CANCEL_GRACE_SECONDS: float = 2.0
    DEFAULT_RESULT_TTL: float = timedelta(days=7).total_seconds()
    FAILED_RESULT_TTL: float | None = None
    LOG_CAP_BYTES: int = 4 * 1024 * 1024
    MAX_ARGUMENT_BYTES: int = 1024 * 1024
    SCHEDULE: dict[str, Any] | None = None
    METRICS_TOKEN: str | None = None
    MASK_SECRET_ARGUMENTS: bool = True
    SECRET_ARGUMENT_NAMES: tuple[str, ...] = ()


_KINDS: Final[dict[str, tuple[type, ...]]] = {
    "AUTOSTART": (bool,),
    "AUTOSTART_QUEUES": (list, tuple),
    "AUTOSTART_CONCURRENCY": (int,),
    "LEASE_SECONDS": (int, float),
    "HEARTBEAT_SECONDS": (int, float),
    "POLL_INTERVAL": (int, float),
    "CANCEL_GRACE_SECONDS": (int, float),
    "DEFAULT_RESULT_TTL": (int, float, timedelta),
    "FAILED_RESULT_TTL": (int, float, timedelta, type(None)),
    "LOG_CAP_BYTES": (int,),
    "MAX_ARGUMENT_BYTES": (int,),
    "SCHEDULE": (dict,),
    "METRICS_TOKEN": (str, type(None)),
    "MASK_SECRET_ARGUMENTS": (bool,),
    "SECRET_ARGUMENT_NAMES": (list, tuple),
}


DURATION_KEYS: Final = frozenset({"DEFAULT_RESULT_TTL", "FAILED_RESULT_TTL"})


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _check_kind(key: str, value: object) -> None:
    kinds = _KINDS[key]
    # bool is an int subclass; a True where a number belongs is a mistake.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        allowed = " or ".join("None" if kind is type(None) else kind.__name__ for kind in kinds)
        raise ConfigurationError(
            f"{SETTING_NAME}[{key!r}] must be {allowed}, not {type(value).__name__} ({value!r})."
        )


def build_settings(raw: object) -> TaskmillSettings:
    """Validate a TASKMILL dict and build the settings object from it.

    Raise ConfigurationError naming the key and the allowed values.
    """
    if raw is None:
        return TaskmillSettings()
    if not isinstance(raw, dict):
        raise ConfigurationError(
            f"settings.{SETTING_NAME} must be a dict, not {type(raw).__name__}."
        )
    known = {f.name for f in fields(TaskmillSettings)}
    # Sorted by repr: a key that isn't a str must be reported, not break the sort.
    unknown = sorted(map(repr, set(raw) - known))
    if unknown:
        raise ConfigurationError(
            f"Unknown key(s) in settings.{SETTING_NAME}: {', '.join(unknown)}. "
            f"Allowed keys: {', '.join(sorted(known))}."
        )
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "AUTOSTART_QUEUES" and value is None:
            continue  # None, the default: every queue of the backend
        _check_kind(key, value)
        is_duration = key in DURATION_KEYS and value is not None
        values[key] = _seconds(value) if is_duration else value
    if "AUTOSTART_QUEUES" in values:
        values["AUTOSTART_QUEUES"] = _queue_names(values["AUTOSTART_QUEUES"])
    if "SECRET_ARGUMENT_NAMES" in values:
        values["SECRET_ARGUMENT_NAMES"] = _secret_names(values["SECRET_ARGUMENT_NAMES"])
    built = TaskmillSettings(**values)
    _check_ranges(built)
    return built


def _queue_names(value: list[object] | tuple[object, ...]) -> tuple[str, ...]:
    bad = [name for name in value if not isinstance(name, str) or not name]
    if bad or not value:
        raise ConfigurationError(
            f"{SETTING_NAME}['AUTOSTART_QUEUES'] must be a non-empty list of queue names, or "
            f"None for all of the backend's queues; got {list(value)!r}."
        )
    return tuple(str(name) for name in value)


def _secret_names(value: list[object] | tuple[object, ...]) -> tuple[str, ...]:
    # Names are matched word by word, so an entry without a letter could never match.
    bad = [name for name in value if not isinstance(name, str) or not name_words(name)]
    if bad:
        raise ConfigurationError(
            f"{SETTING_NAME}['SECRET_ARGUMENT_NAMES'] must be a list of argument names with "
            f"letters in them, such as ['pin', 'iban', 'client_id']; these are not: {bad!r}."
        )
    return tuple(str(name) for name in value)


def _check_ranges(built: TaskmillSettings) -> None:
    for key in ("LEASE_SECONDS", "HEARTBEAT_SECONDS", "POLL_INTERVAL", "DEFAULT_RESULT_TTL"):
        if getattr(built, key) <= 0:
            raise ConfigurationError(f"{SETTING_NAME}[{key!r}] must be greater than 0.")
    if built.CANCEL_GRACE_SECONDS < 0:
        raise ConfigurationError(f"{SETTING_NAME}['CANCEL_GRACE_SECONDS'] must be >= 0.")
    if built.AUTOSTART_CONCURRENCY < 1:
        raise ConfigurationError(f"{SETTING_NAME}['AUTOSTART_CONCURRENCY'] must be at least 1.")
    for key in ("LOG_CAP_BYTES", "MAX_ARGUMENT_BYTES"):
        if getattr(built, key) < 1024:
            raise ConfigurationError(f"{SETTING_NAME}[{key!r}] must be at least 1024 bytes.")
    if built.FAILED_RESULT_TTL is not None and built.FAILED_RESULT_TTL <= 0:
        raise ConfigurationError(f"{SETTING_NAME}['FAILED_RESULT_TTL'] must be greater than 0.")
    if built.SCHEDULE is not None:
        # Imported here: conf is imported before the task machinery.
        from .schedules import specs_from_setting

        specs_from_setting(built.SCHEDULE)
    # Two missed heartbeats must still fit inside one lease, or a slow tick kills a live worker.
    if built.HEARTBEAT_SECONDS * 2 > built.LEASE_SECONDS:
        raise ConfigurationError(
            f"{SETTING_NAME}['HEARTBEAT_SECONDS'] ({built.HEARTBEAT_SECONDS}) must be at most "
            f"half of LEASE_SECONDS ({built.LEASE_SECONDS})."
        )
    # A short token is guessable; scrapers send it on every request, so length costs nothing.
    if built.METRICS_TOKEN is not None and len(built.METRICS_TOKEN) < 16:
        raise ConfigurationError(
            f"{SETTING_NAME}['METRICS_TOKEN'] must be at least 16 characters; generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe())'`."
        )


@cache
def get_settings() -> TaskmillSettings:
    """Return the validated TASKMILL settings, built on first use."""
    return build_settings(getattr(settings, SETTING_NAME, None))


def reset_settings(*, setting: str, **kwargs: object) -> None:
    """Forget the cached settings when a test overrides TASKMILL."""
    if setting == SETTING_NAME:
        get_settings.cache_clear()
