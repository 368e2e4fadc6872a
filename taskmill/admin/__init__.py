"""Taskmill's admin: one module per model family, registered when Django autodiscovers admin.

TaskHistoryInline and TaskHistoryMixin put an object's task history on its own admin page.
"""

from . import schedules, tasks
from .history import TaskHistoryInline, TaskHistoryMixin

__all__ = ["TaskHistoryInline", "TaskHistoryMixin", "schedules", "tasks"]
