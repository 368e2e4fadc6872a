"""Taskmill: background tasks for Django's Tasks framework, queued in your own database."""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .exceptions import Retry
from .task import task

if TYPE_CHECKING:
    from .operations import cancel, enqueue_many, history
    from .output import logs, progress

__all__ = ["Retry", "cancel", "enqueue_many", "history", "logs", "progress", "task"]

# Names whose modules need Django's app registry: imported on first use, so that
# `import taskmill` works while INSTALLED_APPS is still being loaded.
_LAZY = {
    "cancel": "operations",
    "enqueue_many": "operations",
    "history": "operations",
    "logs": "output",
    "progress": "output",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
