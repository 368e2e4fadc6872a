"""What a running task reports, as the demo shows it: its progress as a bar, redrawn at every
fifth of the way, and its captured output lines as the worker stores them."""

from __future__ import annotations

from typing import Final

from taskmill.output import LogLine, LogReader, Progress, open_log

from .narrator import Narrator
from .tour import Stop

BAR_WIDTH: Final = 20
STEPS: Final = 5  # a bar line each time the progress passes a fifth of the way


def progress_bar(progress: Progress) -> str:
    """Render progress as "[█████░░░░░]  50% 30/60 products imported"."""
    fraction = progress.fraction or 0.0
    filled = round(fraction * BAR_WIDTH)
    bar = "█" * filled + "░" * (BAR_WIDTH - filled)
    total = f"/{progress.total:g}" if progress.total else ""
    return f"[{bar}] {fraction:4.0%} {progress.done:g}{total} {progress.message}".rstrip()


class LiveOutput:
    """Follow one task with taskmill's LogReader (what taskmill.logs(id, follow=True) polls)."""

    def __init__(self, stop: Stop, narrator: Narrator) -> None:
        self.stop = stop
        self.narrator = narrator
        self.reader: LogReader = open_log(stop.result)
        self.bars_drawn = 0
        self.step_drawn = -1
        self.lines_shown = 0

    @property
    def progress(self) -> Progress | None:
        """The progress read by the last look()."""
        return self.reader.progress

    def look(self) -> None:
        """Show the lines stored since the last look, then the bar if it moved a step."""
        for line in self.reader.poll():
            self._show_line(line)
        progress = self.reader.progress
        if progress is None or progress.fraction is None:
            return
        step = int(progress.fraction * STEPS)
        if step > self.step_drawn or (self.reader.finished and self.step_drawn < STEPS):
            self.step_drawn = STEPS if self.reader.finished else step
            self.bars_drawn += 1
            self.narrator.event(
                "▰", f"{self.stop.label} {progress_bar(progress)}", self.narrator.style.HTTP_INFO
            )

    def _show_line(self, line: LogLine) -> None:
        self.lines_shown += 1
        stream = "" if line.stream == "stdout" else f"[{line.stream}] "
        self.narrator.event(
            "│",
            f"{self.stop.label} says: {stream}{line.text}",
            self.narrator.style.HTTP_NOT_MODIFIED,
        )
