"""Taskmill's admin: one module per model family, registered when Django autodiscovers admin."""

from . import schedules, tasks

__all__ = ["schedules", "tasks"]
