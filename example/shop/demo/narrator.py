"""How the demo speaks: headings, timed event lines and tables, flushed as they happen.

Colours come from the command's Django style, which is plain unless stdout is a terminal.
"""

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from django.core.management.base import OutputWrapper
from django.core.management.color import Style

type Paint = Callable[[str], str]

VALUE_WIDTH = 52


class Narrator:
    """Write the demo's lines to a command's stdout, each flushed at once."""

    def __init__(self, stdout: OutputWrapper, style: Style) -> None:
        self.stdout = stdout
        self.style = style
        self.clock_started = time.monotonic()

    def start_clock(self) -> None:
        """Count event times from now."""
        self.clock_started = time.monotonic()

    def say(self, text: str = "", paint: Paint | None = None) -> None:
        self.stdout.write(paint(text) if paint is not None and text else text)
        self.stdout.flush()

    def heading(self, text: str) -> None:
        self.say()
        self.say(text, self.style.MIGRATE_HEADING)

    def item(self, name: str, description: str, width: int) -> None:
        """One line of a list: a name in bold, then what it means."""
        self.say(f"  {self.style.MIGRATE_LABEL(name.ljust(width))}  {description}")

    def event(self, symbol: str, text: str, paint: Paint) -> None:
        """One thing that just happened, stamped with the seconds since start_clock()."""
        elapsed = time.monotonic() - self.clock_started
        self.say(f"  {elapsed:5.1f}s  {paint(symbol)} {text}")

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[str]], *, status_column: int
    ) -> None:
        """A plain-text table; cells are padded before they are painted."""
        widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
        header = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
        self.say(f"  {header.rstrip()}")
        self.say("  " + "  ".join("─" * w for w in widths))
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            cells[status_column] = self.paint_status(row[status_column])(cells[status_column])
            self.say("  " + "  ".join(cells).rstrip())

    def paint_status(self, status: str) -> Paint:
        return self.style.SUCCESS if status == "SUCCESSFUL" else self.style.ERROR


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def duration(seconds: float | None) -> str:
    """Render a duration for people: 12 ms, 1.4 s, or — when there is none."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def short(value: object, width: int = VALUE_WIDTH) -> str:
    """Render a JSON value on one line, cut to width."""
    return cut(json.dumps(value, ensure_ascii=False), width)


def cut(text: str, width: int = VALUE_WIDTH) -> str:
    """Return text, shortened to width with an ellipsis if it is longer."""
    return text if len(text) <= width else text[: width - 1] + "…"
