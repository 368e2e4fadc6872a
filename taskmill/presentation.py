"""How times, durations and progress read for people: shared by the dashboard and the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

BAR_WIDTH: Final = 30
_UNITS: Final = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration_text(value: timedelta | None) -> str:
    """Return a duration as its two largest units, e.g. "3m 12s", "2d 4h", "0.4s"."""
    if value is None:
        return "-"
    seconds = value.total_seconds()
    if seconds < 0:
        return "-" + duration_text(-value)
    if seconds < 10:
        return f"{seconds:.1f}s"
    parts: list[str] = []
    remaining = int(seconds)
    for unit, size in _UNITS:
        amount, remaining = divmod(remaining, size)
        if amount or parts:
            parts.append(f"{amount}{unit}")
        if len(parts) == 2:
            break
    return " ".join(part for part in parts if not part.startswith("0")) or "0s"


def ago_text(moment: datetime | None, now: datetime) -> str:
    """Return "5m 3s ago" (or "in 2m" for a future time)."""
    if moment is None:
        return "-"
    if moment > now:
        return f"in {duration_text(moment - now)}"
    return f"{duration_text(now - moment)} ago"


def _progress_fields(progress: Any) -> tuple[Any, Any, str] | None:
    """Return (done, total, message) of a stored progress dict or a Progress, else None."""
    if isinstance(progress, dict):
        return progress.get("done"), progress.get("total"), str(progress.get("message") or "")
    if all(hasattr(progress, name) for name in ("done", "total", "message")):
        return progress.done, progress.total, str(progress.message or "")
    return None


def progress_fraction(progress: Any) -> float | None:
    """Return done/total clamped to 0..1 from a progress report, or None if unknown.

    A report is TaskRecord.progress as stored (a dict) or an output.Progress.
    """
    fields = _progress_fields(progress)
    if fields is None:
        return None
    done, total, _ = fields
    if not isinstance(done, int | float) or not isinstance(total, int | float) or total <= 0:
        return None
    return min(max(done / total, 0.0), 1.0)


def progress_bar(progress: Any, width: int = BAR_WIDTH) -> str:
    """Return a progress report as one line: `[=====>    ]  50% (5/10) message`.

    The one text form of progress, for every command (`show`, `list`, `progress`, `logs`).
    """
    fields = _progress_fields(progress)
    if fields is None:
        return "no progress reported"
    done, total, message = fields
    fraction = progress_fraction(progress)
    if fraction is None:
        text = f"{done:g} done" if isinstance(done, int | float) else "?"
    else:
        filled = round(fraction * width)
        bar = "=" * filled if filled in (0, width) else "=" * (filled - 1) + ">"
        text = f"[{bar.ljust(width)}] {fraction:4.0%} ({done:g}/{total:g})"
    return f"{text} {message}".rstrip()


def last_error_line(errors: Any) -> str:
    """Return the last line of the last stored error's traceback (its exception and message)."""
    if not isinstance(errors, list) or not errors or not isinstance(errors[-1], dict):
        return ""
    traceback = str(errors[-1].get("traceback") or "").strip()
    line = traceback.splitlines()[-1] if traceback else ""
    return line or str(errors[-1].get("exception_class_path", ""))
