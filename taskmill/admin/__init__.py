"""Taskmill's admin: one module per model family, registered when Django autodiscovers admin.

TaskHistoryInline and TaskHistoryMixin put an object's task history on its own admin page.
"""

from . import dashboard, schedules, tasks, workers
from .history import TaskHistoryInline, TaskHistoryMixin

__all__ = ["TaskHistoryInline", "TaskHistoryMixin", "dashboard", "schedules", "tasks", "workers"]
