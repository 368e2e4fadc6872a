"""Autostart: with TASKMILL["AUTOSTART"], a web server process starts a worker process,
keeps it running and stops it when the server stops; a session lock keeps it to one per
database. See docs/how-to/embedded-worker.md.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..conf import get_settings
from ..exceptions import ConfigurationError
from . import checks  # noqa: F401 - registers the autostart system check
from .detection import is_web_server

if TYPE_CHECKING:
    from .keeper import Keeper, current_keeper, start

__all__ = ["Keeper", "current_keeper", "start", "start_if_web_server"]

logger = logging.getLogger("taskmill.autostart")

# Every process sets Django up, and so runs start_if_web_server(); only a web server's needs the
# keeper (threads, subprocess, the queue), so it is imported on first use.
_LAZY = frozenset({"Keeper", "current_keeper", "start"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(".keeper", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def start_if_web_server() -> Keeper | None:
    """Start the keeper if AUTOSTART is on and this process is a web server (AppConfig.ready)."""
    try:
        if not get_settings().AUTOSTART:
            return None
    except ConfigurationError:
        return None  # `check` reports it (taskmill.E010); nothing to start from bad settings
    if not is_web_server(sys.argv, os.environ, inspect.currentframe()):
        return None
    from .keeper import start

    return start()
