"""Taskmill's admin: one module per model family, registered when Django autodiscovers admin."""

from . import dashboard, schedules, tasks

__all__ = ["dashboard", "schedules", "tasks"]
