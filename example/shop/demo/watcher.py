"""Watching the tour: refresh every result until all have finished, telling each change."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.tasks import TaskResult, TaskResultStatus

import taskmill

from .live import LiveOutput
from .narrator import Narrator, cut, duration, seconds_between, short
from .schedules import ScheduleRuns
from .tour import Stop, error_class, last_error_class, stopped_by_itself
from .worker import DemoWorker

POLL_INTERVAL = 0.1


@dataclass(slots=True)
class Told:
    """What has been told about one stop so far."""

    errors: int = 0
    started: bool = False
    finished: bool = False
    cancelled: bool = False  # the demo asked for its cancel


class Watcher:
    """Poll the tour's results with TaskResult.refresh() and narrate what changed: starts,
    retries, ends, the live output of the long tasks, and the runs of the schedules."""

    def __init__(
        self,
        stops: list[Stop],
        narrator: Narrator,
        *,
        periodic: ScheduleRuns,
        periodic_runs: int,
        others: list[ScheduleRuns],
    ) -> None:
        self.stops = stops
        self.narrator = narrator
        self.style = narrator.style
        self.told = {stop.result.id: Told() for stop in stops}
        self.live = {
            stop.result.id: LiveOutput(stop, narrator) for stop in stops if stop.live_output
        }
        self.periodic = periodic
        self.periodic_runs = periodic_runs
        self.schedules = [periodic, *others]

    def watch(self, worker: DemoWorker, deadline: float) -> bool:
        """Narrate until every result has finished and the periodic schedule ran
        `periodic_runs` times (True), or the worker exits or the monotonic deadline passes
        first (False)."""
        while True:
            for stop in self.stops:
                self._look_at(stop)
            for schedule in self.schedules:
                schedule.look()
            if self.is_done():
                return True
            if worker.exit_code() is not None or time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)

    def is_done(self) -> bool:
        return all(told.finished for told in self.told.values()) and self.periodic.ran(
            self.periodic_runs
        )

    def unfinished(self) -> list[Stop]:
        return [stop for stop in self.stops if not self.told[stop.result.id].finished]

    def problems(self) -> list[str]:
        """Say what the demo should have seen live and did not, one sentence each."""
        found = []
        for live in self.live.values():
            label = live.stop.label
            if live.bars_drawn < 2:
                found.append(f"{label}: its progress was seen {live.bars_drawn} time(s)")
            if live.lines_shown == 0:
                found.append(f"{label}: none of its output was seen while it ran")
        if self.periodic.failed:
            found.append(f"{self.periodic.failed} run(s) of {self.periodic.name} failed")
        return found

    def _look_at(self, stop: Stop) -> None:
        told = self.told[stop.result.id]
        if told.finished:
            return
        stop.result.refresh()
        self._tell_retries(stop, told)
        if stop.result.status == TaskResultStatus.RUNNING and not told.started:
            told.started = True
            self._tell_start(stop)
        if stop.result.id in self.live and (told.started or stop.result.is_finished):
            self._follow(stop, told)
        if stop.result.is_finished and not told.finished:
            told.finished = True
            self._tell_end(stop)

    def _tell_retries(self, stop: Stop, told: Told) -> None:
        # Every error but a failed result's last one belongs to an attempt that was retried;
        # a poll may find several at once.
        errors = stop.result.errors
        retried = len(errors) - 1 if stop.result.status == TaskResultStatus.FAILED else len(errors)
        for number in range(told.errors + 1, retried + 1):
            kind = error_class(errors[number - 1])
            self.narrator.event(
                "↻", f"{stop.label}: attempt {number} failed ({kind}), retrying", self.style.WARNING
            )
        told.errors = max(told.errors, retried)

    def _tell_start(self, stop: Stop) -> None:
        if stop.after:
            after = " and ".join(dependency.label for dependency in stop.after)
            self.narrator.event(
                "▶", f"{stop.label} is running, now that {after} succeeded", self.style.HTTP_INFO
            )
        elif stop.announce_start or stop.live_output:
            self.narrator.event("▶", f"{stop.label} is running", self.style.HTTP_INFO)

    def _follow(self, stop: Stop, told: Told) -> None:
        live = self.live[stop.result.id]
        live.look()
        progress = live.progress
        if stop.cancel_at is None or told.cancelled or progress is None:
            return
        if progress.fraction is not None and progress.fraction >= stop.cancel_at:
            told.cancelled = True
            asked = taskmill.cancel(stop.result.id)
            what = "asked it to stop" if asked else "found it already finished"
            self.narrator.event(
                "⊘",
                f"{stop.label} is {progress.fraction:.0%} done: taskmill.cancel() {what}",
                self.style.NOTICE,
            )

    def _tell_end(self, stop: Stop) -> None:
        result = stop.result
        if result.status == TaskResultStatus.SUCCESSFUL:
            self._tell_success(stop)
            return
        kind = last_error_class(result)
        if kind == "TimeoutError":
            self.narrator.event("⏱", f"{stop.label}: {error_text(result)}", self.style.WARNING)
        elif kind == "DependencyFailed":
            self.narrator.event(
                "⊘",
                f"{stop.label} cancelled without running: {why_cancelled(stop)}",
                self.style.NOTICE,
            )
        elif kind == "TaskCancelled":
            took = duration(seconds_between(result.last_attempted_at, result.finished_at))
            how = "stopped by itself" if stopped_by_itself(result) else "was killed"
            self.narrator.event(
                "⊘",
                f"{stop.label} cancelled while running: it {how}, after running {took}",
                self.style.NOTICE,
            )
        else:
            self.narrator.event("✗", f"{stop.label}: {error_text(result)}", self.style.ERROR)

    def _tell_success(self, stop: Stop) -> None:
        result = stop.result
        took = duration(seconds_between(result.started_at, result.finished_at))
        notes = []
        if result.attempts > 1:
            notes.append(f"on attempt {result.attempts}")
        if stop.after:
            notes.append("after " + " and ".join(dependency.label for dependency in stop.after))
        if result.task.run_after is not None:
            waited = duration(seconds_between(result.enqueued_at, result.started_at))
            notes.append(f"started {waited} after it was enqueued")
        suffix = f" ({', '.join(notes)})" if notes else ""
        self.narrator.event(
            "✓",
            f"{stop.label} → {short(result.return_value)} in {took}{suffix}",
            self.style.SUCCESS,
        )


def error_text(result: TaskResult[..., Any]) -> str:
    """Return "ErrorClass: message" for a result's last error, from its traceback."""
    if not result.errors:
        return ""
    error = result.errors[-1]
    kind = error_class(error)
    lines = [line for line in error.traceback.splitlines() if line.strip()]
    message = lines[-1].split(": ", 1)[-1] if lines and ": " in lines[-1] else ""
    return f"{kind}: {message}" if message else kind


def why_cancelled(stop: Stop) -> str:
    """Say which dependency's failure cancelled a stop."""
    failed = [d.label for d in stop.after if d.result.status == TaskResultStatus.FAILED]
    return f"{' and '.join(failed) or 'a dependency'} failed"


def outcome_text(stop: Stop) -> str:
    """Return a finished stop's return value, or its last error, on one short line."""
    result = stop.result
    if result.status == TaskResultStatus.SUCCESSFUL:
        return short(result.return_value)
    if last_error_class(result) == "DependencyFailed":
        return f"DependencyFailed: {why_cancelled(stop)}"
    return cut(error_text(result))
